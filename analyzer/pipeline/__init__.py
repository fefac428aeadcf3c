"""The analysis as a chain of pure stages over pieces of the input (DESIGN "Stream, then reduce").

read (`analyzer.bundle`: members, then chunks of whole records) -> map (a chunk to a `Partial`) ->
merge (`Partial.merge`, associative) -> analyses -> rules -> diagnosis -> report. `partial` holds
the contract between the reader and everything after it: what a chunk is, what its partial holds
and how partials combine.
"""
