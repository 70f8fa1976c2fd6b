"""Data loaders: offline natural photos and patches (nothing is downloaded)."""

from verify.data.cifar import load_cifar10, read_cifar_batch
from verify.data.fashion_mnist import (
    DatasetNotFoundError,
    fashion_mnist_available,
    load_fashion_mnist,
    read_idx,
)
from verify.data.foolbox_data import foolbox_available, foolbox_image
from verify.data.images import PHOTOS, load_photo, natural_patches
from verify.data.photo_task import fit_zca, photo_task

__all__ = ["PHOTOS", "DatasetNotFoundError", "fashion_mnist_available", "fit_zca",
           "foolbox_available", "foolbox_image", "load_cifar10", "load_fashion_mnist",
           "load_photo", "natural_patches", "photo_task", "read_cifar_batch", "read_idx"]
