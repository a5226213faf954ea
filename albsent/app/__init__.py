"""The use cases, one module per use case: a config in, a result out, no printing. The CLI's
subcommands (albsent/commands/) and the Ray jobs (jobs/) are thin adapters over these functions,
so both run exactly the same code. Ray-free where the use case is (one-recipe training, pretrain,
probe); the ones that need a cluster open it through albsent.runner."""
