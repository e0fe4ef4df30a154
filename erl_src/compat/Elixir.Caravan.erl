%%% @doc Caravan: Erlang and Elixir distribution without epmd, and clusters
%%% that form themselves from Consul, Nomad or any DNS server with SRV
%%% records.
%%%
%%% This module holds no functions: it is the front page Caravan 1.0.1
%%% had, kept so that `h Caravan' and `doctest Caravan' work as they did.
%%%
%%% == No epmd ==
%%%
%%% epmd tells a node which port another node listens on. In a container
%%% scheduler (Nomad, Kubernetes) a fixed epmd port per host is awkward
%%% and several VMs may share one host, so caravan does without it: the
%%% port is part of the node's name. `app-4370@10.0.0.5' listens on, and
%%% is dialled at, port 4370; a name with no trailing digits uses 4370.
%%% `Caravan.Epmd.dist_port/1' applies that rule.
%%%
%%% Start a node with the epmd module in place of epmd:
%%%
%%% ```
%%% iex --erl "-start_epmd false -epmd_module caravan_epmd -pa _build/dev/lib/caravan/ebin" --sname app-4370 -S mix
%%% '''
%%%
%%% The `-pa' is needed with `iex -S mix' only: the VM loads the epmd
%%% module before Mix puts the dependencies on the code path. A release
%%% (`mix release') finds it without. Caravan 1.0.1's module names work
%%% too: `-proto_dist Elixir.Caravan.Epmd.Dist -epmd_module
%%% Elixir.Caravan.Epmd.Client'.
%%%
%%% == Clusters that form themselves ==
%%%
%%% A cluster asks its sources (DNS SRV records, Consul's health API,
%%% Nomad's services API) which nodes exist, connects to them, and drops
%%% the ones no source lists any more. Configure clusters in the
%%% application environment (`config :caravan, clusters: [...]') or run
%%% one as a libcluster strategy: `:caravan_libcluster', or 1.0.1's
%%% `Caravan.Cluster.DnsStrategy' with its config unchanged.
%%%
%%% The README tells the whole story: flags, config keys, what an operator
%%% sees in the logs and in telemetry.
-module('Elixir.Caravan').
