"""List file formats: each parser turns a stream into parsed records and rejected lines, never raising on
one bad entry. Validation of the hash values themselves happens once, in `engine.importing`."""
