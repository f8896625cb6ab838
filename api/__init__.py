"""callqa service: HTTP API, database and ingestion worker over the ``analyzer`` library.

Layout, one domain per folder::

    core/        settings, database, errors, storage of recordings, security (passwords, tokens)
    models.py    the tables (SQLAlchemy 2.0); migrations in migrations/ (Alembic); tables.py gathers every table
    audit.py     the audit log, written in the same transaction as the change
    auth/        users, tokens, teams, managers
    calls/       ingestion (upload, folder import, PBX webhook), listing, detail, recordings, re-scoring
    reviews/     quality-controller overrides, manager disputes, audit log, agreement
    scripts/     script versions stored in the database
    learning/    a script learns a new version from its reviews
    processing/  the queue: leases, the per-call pipeline, local and Celery executors
    app.py       the FastAPI application; bootstrap.py readies a fresh database (schema, scripts, first admin)
    cli.py       the ``callqa`` command line; cli_support.py what its commands share

A domain's API schemas (``schemas.py``) are named for their part in a request or an answer:
``XCreate`` the body that creates an X, ``XUpdate`` a partial update of one, ``XPublic`` what the API
answers, ``XBase`` the fields several of them share. Tables are named for what they hold (``Call``).
"""
