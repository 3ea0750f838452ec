"""Plain domain rules with no I/O: vocabulary, phone numbers, masking."""
