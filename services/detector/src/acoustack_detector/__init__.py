"""acoustack detector service: models behind the Model contract, and the detection pipeline."""
