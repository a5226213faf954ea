"""One module per `albsent` subcommand: `add_parser(subparsers)` and `run(args)`."""
