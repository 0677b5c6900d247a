"""Built-in eval suites: generators and scorers that write ordinary eval files."""
