//! Conformance suite for the Ingram server and client: see `tests/suite/`.
