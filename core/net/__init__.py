"""DICOM networking over pynetdicom: echo, find, move/get into our SCP, store."""
