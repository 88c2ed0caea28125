"""Fill detection_tag_counts (0005) for the model outputs stored before it, decoding each document
once, in batches, so the activity charts cover the whole history."""

from acoustack_storage.activity import backfill_tag_counts


def migrate(conn):
    backfill_tag_counts(conn)
