"""The request/response API for services that do not read Kafka: a session's latest list, or a list for given items.

``sessionrec api`` serves it (FastAPI on uvicorn, its OpenAPI document at
``/openapi.json``); ``client.RecommenderClient`` is a small Python client.
"""
