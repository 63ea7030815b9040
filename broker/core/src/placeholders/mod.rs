//! Placeholders and functions (docs/basic-placeholders.md, docs/connectivity-header-mapping.md):
//! `{{ prefix:name | fn:… }}` templates compiled once, checked against the prefixes a location
//! allows, and evaluated without re-parsing.
