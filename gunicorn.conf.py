# Read by gunicorn from the working directory: the service's settings (core/gunicorn_conf.py).
from core.gunicorn_conf import *  # noqa: F403
