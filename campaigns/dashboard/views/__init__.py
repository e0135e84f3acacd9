"""Dashboard views, one module per area. Each view parses, calls one service or selector, renders.

Every view runs inside the current organization (``context.org_view``): selectors are scoped by
it, so another organization's brand, campaign, clip or job is a 404.
"""
