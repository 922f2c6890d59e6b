"""Writes of the deployments app (services named <entity>_<action>), keyword-only, the
acting user as `actor`, audited inside: compute targets (`compute`), environments
(`environments`), source snapshots (`snapshots`) and remote runs (`jobs`).

The worker-side services of `jobs` take plain ids and return plain data: compute
workers reach them over /api/v1 and hold no database URL or server secret.
"""
