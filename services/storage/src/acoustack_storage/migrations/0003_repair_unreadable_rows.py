"""Rows the read side refuses, left by versions that did not check every field before writing
(issue 16: an over-long path broke every listing), are repaired; each value replaced is kept in the
new table quarantined_values. See acoustack_storage.repair for the rules."""

from acoustack_storage.repair import repair_unreadable_rows


def migrate(conn):
    repair_unreadable_rows(conn)
