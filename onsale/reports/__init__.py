"""Reports and exports: the read model the committer keeps (rollup.py), an event's and the
platform's reports (queries.py), and the CSV exports (exports.py) with their audit."""
