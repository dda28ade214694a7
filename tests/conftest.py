pytest_plugins = [
    "tests.fixtures.infra",
    "tests.fixtures.database",
    "tests.fixtures.kafka",
    "tests.fixtures.api",
]
