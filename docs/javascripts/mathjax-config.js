// MathJax 3 configuration. MathJax itself is served from this site
// (javascripts/mathjax/tex-svg-full.js, added by docs_hooks/mathjax.py from the PyPI
// package django-static-mathjax): no script or font comes from the internet.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  svg: {
    // one shared set of glyph paths per page instead of a copy in every formula
    fontCache: "global"
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  }
};
document$.subscribe(() => {
  MathJax.typesetPromise()
})
