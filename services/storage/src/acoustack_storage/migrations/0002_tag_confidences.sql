-- For every key=value detection tag of an output, the highest confidence any detection gave it,
-- as two parallel arrays. Retention ranks the recordings of each species from these without
-- decoding the documents. NULL on outputs stored before this migration: retention decodes those.
ALTER TABLE model_outputs
    ADD COLUMN tag_best_entries text[],
    ADD COLUMN tag_best_confidences double precision[];
