"""DICOM basics shared by every command: one pydicom configuration, one value-to-text rule."""
