"""The HTML report (:mod:`.page`), what it shows of each program (:mod:`.programs`), its plots
(:mod:`.charts`) and code highlighting (:mod:`.highlight`), and the pytest-html extras
(:mod:`.pytest_html`, worker side). Importing this package loads none of them."""
