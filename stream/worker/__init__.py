"""The stream worker: micro-batches from Kafka through the model to Redis and the recommendations topic."""

import os
import socket

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"  # this process, as its heartbeats and the lists it sends name it
