import Config

# A cluster configured the way an Elixir user configures one: caravan's
# application environment, read at boot. Its callback source lists what
# CaravanElixirTest.Listing holds on each node (nothing, in the test VM).
config :caravan,
  clusters: [
    runtime: %{
      sources: [
        {:callback, %{basename: "app", discover: &CaravanElixirTest.Listing.discover/0}}
      ],
      poll_interval: 200,
      self_listed: false,
      prune: false
    }
  ]
