"""Many bundles at once: `analyze-many` and `diff` (issue 18).

`sources` expands what the user named into bundles, `one` analyses one bundle (a pure function of
its settings, run in a process pool or on Dask workers), `run` schedules them, `summary` tabulates
the outcomes with polars and `summary_render` draws the summary. Reports of each bundle are those
`analyze` writes, byte for byte.
"""
