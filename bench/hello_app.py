"""A bare Flask "hello" app: the yardstick the submission benchmark compares against."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"
