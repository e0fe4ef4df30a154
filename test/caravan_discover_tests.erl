%%% Discovery arguments and node names, without any server: options of the
%%% wrong type come back as {error, {bad_args, _}} (not a crash in the
%%% caller), and every source names nodes the same way.
-module(caravan_discover_tests).

-include_lib("eunit/include/eunit.hrl").

bad_option_types_are_errors_test_() ->
    Consul = #{service => "app", basename => "app", url => "http://127.0.0.1:1"},
    Dns = #{query => "app.service.consul", basename => "app"},
    [?_assertMatch({error, {bad_args, _}}, caravan:discover({consul, Consul#{url => 42}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({consul, Consul#{token => self()}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({consul, Consul#{tag => {a, b}}})),
     ?_assertMatch({error, {bad_args, _}},
                   caravan:discover({nomad, Consul#{namespace => [foo]}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({dns, Dns#{servers => [1, 2]}})),
     ?_assertMatch({error, {bad_args, _}}, caravan:discover({dns, Dns#{query => 3.5}}))].

node_names_test_() ->
    [?_assertEqual('app-4370@10.0.0.5', caravan_name:node("app", 4370, {10, 0, 0, 5})),
     ?_assertEqual('app-4370@10.0.0.5', caravan_name:node(<<"app">>, 4370, <<"10.0.0.5">>)),
     ?_assertEqual('app-1@fd00::1', caravan_name:node("app", 1, {16#fd00, 0, 0, 0, 0, 0, 0, 1})),
     %% The same address written differently is the same node.
     ?_assertEqual('app-1@fd00::1', caravan_name:node("app", 1, "FD00:0:0::1")),
     ?_assertEqual('app-1@node7.example', caravan_name:node("app", 1, <<"node7.example">>)),
     ?_assertEqual(['app-1@10.0.0.1', 'app-2@10.0.0.1'],
                   caravan_catalog:nodes("app", [#{address => <<"10.0.0.1">>, port => 2},
                                              #{address => <<"10.0.0.1">>, port => 1},
                                              #{address => <<"10.0.0.1">>, port => 1},
                                              #{address => <<"10.0.0.9">>, port => 0}]))].

%% A cluster config with a value of the wrong type is refused at start, with
%% the key named, instead of a cluster that crashes on its first timer (and
%% without a crash report: it is checked before a process starts).
bad_cluster_configs_are_refused_test_() ->
    Dns = {dns, #{query => "app.service.consul", basename => "app"}},
    Start = fun(Config) -> caravan:start_cluster(bad, Config) end,
    {setup,
     fun() -> {ok, _} = application:ensure_all_started(caravan) end,
     fun(_) -> ok end,
     [?_assertEqual({error, {bad_config, poll_interval, "1000"}},
                    Start(#{sources => [Dns], poll_interval => "1000"})),
      ?_assertEqual({error, {bad_config, retry_min, 0}},
                    Start(#{sources => [Dns], retry_min => 0})),
      ?_assertEqual({error, {bad_config, prune_grace, -1}},
                    Start(#{sources => [Dns], prune_grace => -1})),
      ?_assertEqual({error, {bad_config, prune, yes}}, Start(#{sources => [Dns], prune => yes})),
      ?_assertMatch({error, {bad_config, connect, _}},
                    Start(#{sources => [Dns], connect => fun net_kernel:connect_node/1})),
      %% The documented reasons (caravan_cluster_config:check/1), not any error.
      ?_assertEqual({error, {bad_config, "a cluster needs `sources' (or `source')"}},
                    Start(#{poll_interval => 1000})),
      ?_assertMatch({error, {bad_sources, [{dns, #{}}]}}, Start(#{sources => [{dns, #{}}]})),
      ?_assertEqual({error, {bad_config, [{sources, [Dns]}]}}, Start([{sources, [Dns]}])),
      %% Both forms at once: one would be ignored without a word.
      ?_assertEqual({error, {bad_config, "give `sources' or `source', not both"}},
                    Start(#{sources => [Dns], source => Dns})),
      ?_assertEqual({error, {bad_config, sources, []}}, Start(#{sources => []})),
      ?_assertEqual({error, {bad_config, sources, Dns}}, Start(#{sources => Dns})),
      %% A name_by or family caravan_dns has no branch for.
      ?_assertEqual({error, {bad_config, name_by, addresses}},
                    Start(#{sources => [{dns, #{query => "a.service.consul", basename => "a",
                                                name_by => addresses}}]})),
      ?_assertEqual({error, {bad_config, family, ipv4}},
                    Start(#{sources => [{dns, #{query => "a.service.consul", basename => "a",
                                                family => ipv4}}]})),
      %% Servers the program cannot read: every lookup used to fail,
      %% the cluster running and never forming.
      [?_assertEqual({error, {bad_config, servers, S}},
                     Start(#{sources => [{dns, #{query => "a.service.consul", basename => "a",
                                                 servers => S}}]}))
       || S <- [consul, "127.0.0.1:8600", <<"127.0.0.1:8600">>, [8600], ["10.0.0.1:0"],
                ["10.0.0.1:65536"], ["10.0.0.1:53x"], ["300.0.0.1:53"], ["fd00::1:53:"],
                ["[fd00::1]53"], ["[10.0.0.1]:53"], ["host.example:53"], [""],
                lists:duplicate(9, "127.0.0.1:53"),
                %% c-ares 1.18 refuses these although OTP reads their addresses.
                ["[fd00::1]"], ["fe80::1%lo"], ["[fe80::1%eth0]:53"], ["10.0.0.1:+53"],
                %% Nine in all, five of them in one text.
                ["10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5" | lists:duplicate(4, "10.0.0.9")],
                ["10.0.0.1,,10.0.0.2"]]],
      ?_assertEqual([], caravan_cluster_sup:clusters())]}.

%% The servers the program reads (c-ares' forms), and `system'.
valid_servers_test_() ->
    [?_assert(caravan_dns:valid_servers(S))
     || S <- [system, [], ["127.0.0.1:8600"], [<<"127.0.0.1:8600">>], ["127.0.0.1"],
              ["[::1]:53"], ["fd00::1"], ["::1"], ["127.0.0.1:1", <<"[::1]:65535">>],
              lists:duplicate(8, "127.0.0.1:53"),
              %% Several in one text, as from an environment variable.
              ["10.0.0.1,10.0.0.2:8600,[fd00::1]:53"], [<<"10.0.0.1,10.0.0.2">>, "10.0.0.3"]]].
