"""SCIM 2.0 provisioning (RFC 7643/7644) of the directory at `/scim/v2` (docs/scim.md)."""
