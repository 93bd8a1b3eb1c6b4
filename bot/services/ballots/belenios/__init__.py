"""Ballots run as Belenios elections, with Debian's belenios-tool (README, "Verifiable
ballots with Belenios"): tool.py runs the tool, election.py says what a ballot is in its
terms, files.py makes and reads the election's files, service.py ties them to the
database (opening, the vote inside a turn, the close)."""
