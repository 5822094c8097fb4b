"""The `metroledger` command line: it sits above every package (node, oracle, bench, sim),
so that none of them imports another's command line."""
