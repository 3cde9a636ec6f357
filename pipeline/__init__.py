"""The build job: ingest, detect, synthesize, write; config, seeding and the CLI."""

__version__ = "0.1.0"
