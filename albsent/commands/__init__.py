"""One module per `albsent` subcommand, a thin argparse adapter: `add_parser(subparsers)` and
`run(args)` (parse -> config -> the use case in albsent/app/ -> print)."""
