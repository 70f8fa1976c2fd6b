"""Data loaders: offline natural photos and patches (nothing is downloaded)."""

from verify.data.images import PHOTOS, load_photo, natural_patches

__all__ = ["PHOTOS", "load_photo", "natural_patches"]
