"""The runtime oracle: tiny torchtune assets, a corpus of configs, and `tune run` as the judge.

Each case of the corpus is trained for two steps with the real `tune run` so that tests can
assert that `validate`'s verdict on a config is what torchtune actually did with it. Importing
this package imports neither torch nor torchtune (the pytest process and the runner's parent
import them only where they need them).
"""
