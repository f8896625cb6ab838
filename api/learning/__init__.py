"""A script learns from its reviewers (:mod:`api.learning.service`), over HTTP under
``/api/v1/scripts/{id}/`` (:mod:`api.learning.routes`). It stands on the calls, their reviews and
the script library, which need nothing from it."""
