%%% Caravan 1.0.1's own tests (uberbrodt/caravan, test/), ported to EUnit
%%% against caravan's compat modules: same cases, same assertions. Each
%%% test names the 1.0.1 test it mirrors. The ones that need DNS or a
%%% running strategy live in caravan_compat_SUITE (real BIND, real nodes).
%%% Below them: caravan's own checks of the compat layer's pure parts.
-module(caravan_compat_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CONFIG, 'Elixir.Caravan.Cluster.Config').
-define(STRATEGY, 'Elixir.Caravan.Cluster.DnsStrategy').
-define(EPMD, 'Elixir.Caravan.Epmd').
-define(CLIENT, 'Elixir.Caravan.Epmd.Client').

%%% test/caravan/cluster/config_test.exs (Caravan.Cluster.ConfigTest)

%% create_state/1 of config_test.exs: a %Cluster.Strategy.State{} with
%% libcluster's defaults, the given fields merged over it; a given config
%% is merged over query and node_sname (Keyword.merge).
create_state(#{config := InConfig} = InState) ->
    Defaults = [{query, "profile-service-dist.service.consul"}, {node_sname, "profile-service"}],
    Config = [KV || {K, _} = KV <- Defaults, not lists:keymember(K, 1, InConfig)] ++ InConfig,
    maps:merge(state_struct(), InState#{config => Config});
create_state(InState) ->
    maps:merge(state_struct(#{topology => caravan,
                              connect => {net_kernel, connect_node, []},
                              disconnect => {erlang, disconnect_node, []},
                              list_nodes => {erlang, nodes, [connected]},
                              config => [{query, "profile-service-dist.service.consul"},
                                         {node_sname, "profile-service"}]}),
               InState).

%% %Cluster.Strategy.State{} with libcluster 3.5's field defaults
%% (lib/strategy/state.ex): every MFA nil, config [] (only
%% Cluster.Supervisor fills the MFAs in).
state_struct() ->
    state_struct(#{}).
state_struct(Fields) ->
    maps:merge(#{'__struct__' => 'Elixir.Cluster.Strategy.State', topology => nil,
                 connect => nil, disconnect => nil, list_nodes => nil,
                 config => [], meta => nil}, Fields).

new(State) -> ?CONFIG:new(State).

%% "new/1 sets :connect"
config_sets_connect_test() ->
    ?assertEqual(foo, maps:get(connect, new(create_state(#{connect => foo})))).

%% "new/1 sets :toplology"
config_sets_topology_test() ->
    ?assertEqual(<<"whatever">>, maps:get(topology, new(create_state(#{topology => <<"whatever">>})))).

%% "new/1 sets :disconnect"
config_sets_disconnect_test() ->
    ?assertEqual(foo, maps:get(disconnect, new(create_state(#{disconnect => foo})))).

%% "new/1 sets :list_nodes"
config_sets_list_nodes_test() ->
    ?assertEqual(foo, maps:get(list_nodes, new(create_state(#{list_nodes => foo})))).

%% "new/1 sets :query"
config_sets_query_test() ->
    ?assertEqual(foo, maps:get(query, new(create_state(#{config => [{query, foo}]})))).

%% "new/1 sets :dns_client"
config_sets_dns_client_test() ->
    ?assertEqual(foo, maps:get(dns_client, new(create_state(#{config => [{dns_client, foo}]})))).

%% "new/1 sets :node_sname"
config_sets_node_sname_test() ->
    ?assertEqual(foo, maps:get(node_sname, new(create_state(#{config => [{node_sname, foo}]})))).

%% "new/1 sets :poll_interval"
config_sets_poll_interval_test() ->
    ?assertEqual(foo, maps:get(poll_interval,
                               new(create_state(#{config => [{poll_interval, foo}]})))).

%% "new/1 raises KeyError if :query not set"
config_raises_key_error_without_query_test() ->
    ?assertError(#{'__struct__' := 'Elixir.KeyError', key := query},
                 new(state_struct(#{config => [{node_sname, "something"}]}))).

%% "new/1 raises KeyError if :node_sname not set"
config_raises_key_error_without_node_sname_test() ->
    ?assertError(#{'__struct__' := 'Elixir.KeyError', key := node_sname},
                 new(state_struct(#{config => [{query, "something"}]}))).

%%% test/caravan/cluster/dns_strategy_test.exs (Caravan.Cluster.DnsStrategyTest)
%%% "connect/1 gets correct node names" and "start_link/1" start the
%%% strategy: caravan_compat_SUITE.

%% "find_nodes/1": the fake client's record becomes
%% connectnodetest-7000@somenode.foo.example.net, which connect_test gets.
find_nodes_test() ->
    caravan_compat_test_client:reset(),
    Config = ?CONFIG:'__struct__'(#{topology => caravan,
                                    connect => {caravan_compat_test_client, connect_test, []},
                                    list_nodes => {erlang, nodes, [connected]},
                                    dns_client => caravan_compat_test_client,
                                    node_sname => <<"connectnodetest">>,
                                    query => <<"fooo">>}),
    ?assertEqual(ok, ?STRATEGY:find_nodes(Config)),
    ?assertEqual(['connectnodetest-7000@somenode.foo.example.net'],
                 caravan_compat_test_client:connected()),
    caravan_compat_test_client:reset().

%% "connect/1 gets correct node names" as 1.0.1 wrote it: the
%% %Cluster.Strategy.State{} built by hand, disconnect left nil, started
%% as start_supervised({DnsStrategy, [state]}) starts it. The connect MFA
%% gets connectnodetest-7000@somenode.foo.example.net. Before issue 20 the
%% start failed: {bad_config, disconnect, nil}.
state_built_by_hand_starts_the_strategy_test_() ->
    {timeout, 30,
     fun() ->
             caravan_compat_test_client:reset(),
             State = state_struct(#{topology => caravan_nil_mfas,
                                    connect => {caravan_compat_test_client, connect_test, []},
                                    list_nodes => {erlang, nodes, [connected]},
                                    config => [{dns_client, caravan_compat_test_client},
                                               {node_sname, <<"connectnodetest">>},
                                               {query, <<"fooo">>},
                                               {poll_interval, 100}]}),
             {ok, Pid} = ?STRATEGY:start_link([State]),
             unlink(Pid),
             try
                 wait_until(fun() -> caravan_compat_test_client:connected() =/= [] end, 100),
                 ?assertEqual(['connectnodetest-7000@somenode.foo.example.net'],
                              lists:usort(caravan_compat_test_client:connected()))
             after
                 caravan_cluster:stop(Pid),
                 caravan_compat_test_client:reset()
             end
     end}.

%% The same state with every MFA nil, for caravan's own strategy: nil is
%% libcluster's default MFA. Before issue 20: {bad_config, connect, nil}.
nil_mfas_are_libclusters_defaults_test() ->
    Source = {callback, #{basename => "app", discover => fun() -> {ok, []} end}},
    State = state_struct(#{topology => caravan_all_nil, config => [{sources, [Source]}]}),
    {ok, Pid} = caravan_libcluster:start_link([State]),
    unlink(Pid),
    try
        ?assertMatch(#{started_by := libcluster}, caravan_cluster:status(Pid))
    after
        caravan_cluster:stop(Pid)
    end,
    %% find_nodes/1 too: a nil connect and list_nodes are libcluster's.
    caravan_compat_test_client:reset(),
    Config = ?CONFIG:new(state_struct(#{topology => caravan,
                                        config => [{dns_client, caravan_compat_test_client},
                                                   {node_sname, <<"connectnodetest">>},
                                                   {query, <<"fooo">>}]})),
    %% Not distributed: net_kernel:connect_node/1 answers ignored.
    ?assertEqual({error, [{'connectnodetest-7000@somenode.foo.example.net', ignored}]},
                 ?STRATEGY:find_nodes(Config)).

wait_until(Fun, 0) ->
    ?assert(Fun());
wait_until(Fun, Tries) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(100), wait_until(Fun, Tries - 1)
    end.

%%% test/caravan/epmd_test.exs: the doctests of Caravan.Epmd.dist_port/1

dist_port_doctest_test() ->
    ?assertEqual(3434, ?EPMD:dist_port('app-name3434@example.net')),
    ?assertEqual(4834, ?EPMD:dist_port('app-name-4834@example.net')).

%%% test/caravan/dns_client/inet_res_test.exs: caravan_compat_SUITE (DNS).
%%% test/caravan_test.exs: `doctest Caravan' (the moduledoc has no examples).

%%% caravan's own checks of the compat layer

%% 1.0.1's dist_port takes atoms, charlists and binaries, with or without a
%% host, and answers 4370 for names that end in no digits.
dist_port_forms_test() ->
    [?assertEqual(4370 + 1, ?EPMD:dist_port(N))
     || N <- ['app-4371@h', "app-4371@h", <<"app-4371@h">>, "app-4371", <<"app4371">>]],
    ?assertEqual(4370, ?EPMD:dist_port('app@example.net')),
    ?assertEqual(4370, ?EPMD:dist_port(<<"app">>)),
    ?assertEqual(4370, ?EPMD:dist_port("")),
    %% digits in the host part do not count
    ?assertEqual(4370, ?EPMD:dist_port("app@host5")).

%% 1.0.1's register_node was pure: no epmd process needed.
register_node_needs_no_process_test() ->
    ?assertEqual(undefined, whereis(caravan_epmd)),
    ?assertEqual({ok, -1}, ?CLIENT:register_node("app-4370", 4370)),
    ?assertEqual({ok, -1}, ?CLIENT:register_node("app-4370", 4370, inet_tcp)).

%% Config defaults: 1.0.1's (InetRes client, 5 s) and caravan's additions.
config_defaults_test() ->
    C = new(create_state(#{})),
    ?assertMatch(#{'__struct__' := ?CONFIG, dns_client := 'Elixir.Caravan.DnsClient.InetRes',
                   poll_interval := 5000, dns_servers := nil, name_by := target,
                   topology := caravan}, C).

%% The cluster the strategy runs never prunes and connects to what is
%% listed, naming by target host unless name_by: :address.
cluster_options_never_prune_test() ->
    State = create_state(#{config => [{dns_servers, ["127.0.0.1:8600"]}, {poll_interval, 700}]}),
    Opts = ?STRATEGY:cluster_options(new(State)),
    ?assertMatch(#{prune := false, self_listed := false, poll_interval := 700,
                   sources := [{dns, #{query := "profile-service-dist.service.consul",
                                       basename := "profile-service",
                                       servers := ["127.0.0.1:8600"], name_by := target}}]},
                 Opts),
    ?assertEqual(ok, caravan_cluster_config:check(Opts)),
    ByAddress = ?STRATEGY:cluster_options(
                   new(create_state(#{config => [{name_by, address}]}))),
    ?assertMatch(#{prune := false, sources := [{dns, #{name_by := address}}]}, ByAddress).

%% dns_servers as one string, binary or charlist, is that one server;
%% anything else is refused when the cluster checks its config. Before,
%% a binary was ignored (the host's resolvers were asked instead) and a
%% charlist was taken as a list of numbers.
cluster_options_one_dns_server_as_a_string_test_() ->
    Servers = fun(Value) ->
                      Opts = ?STRATEGY:cluster_options(
                                new(create_state(#{config => [{dns_servers, Value}]}))),
                      #{sources := [{dns, #{servers := S}}]} = Opts,
                      {S, caravan_cluster_config:check(Opts)}
              end,
    [?_assertEqual({[<<"127.0.0.1:8600">>], ok}, Servers(<<"127.0.0.1:8600">>)),
     ?_assertEqual({["127.0.0.1:8600"], ok}, Servers("127.0.0.1:8600")),
     ?_assertEqual({["127.0.0.1:8600", <<"[::1]:53">>], ok},
                   Servers(["127.0.0.1:8600", <<"[::1]:53">>])),
     ?_assertMatch({_, {error, _}}, Servers([8600])),
     ?_assertMatch({_, {error, _}}, Servers(consul)),
     ?_assertMatch({_, {error, _}}, Servers(<<"not an address">>))].

%% Without dns_servers: inet_db's nameservers when it has any (what
%% inet_res, 1.0.1's client, asked), else the host's resolv.conf.
cluster_options_servers_from_inet_db_test() ->
    Before = inet_db:res_option(nameservers),
    try
        ok = inet_db:res_option(nameservers, []),
        #{sources := [{dns, #{servers := system}}]} =
            ?STRATEGY:cluster_options(new(create_state(#{}))),
        ok = inet_db:res_option(nameservers, [{{127, 0, 0, 1}, 8600}, {{0, 0, 0, 0, 0, 0, 0, 1}, 53}]),
        ?assertMatch(#{sources := [{dns, #{servers := ["127.0.0.1:8600", "[::1]:53"]}}]},
                     ?STRATEGY:cluster_options(new(create_state(#{}))))
    after
        inet_db:res_option(nameservers, Before)
    end.

%% A dns_client goes through a callback source, whose discover fun turns
%% 1.0.1's [{Port, Host}] into [{Host, Port}], and a crash into an error.
dns_client_discover_test() ->
    Opts = ?STRATEGY:cluster_options(
              new(create_state(#{config => [{dns_client, caravan_compat_test_client}]}))),
    #{prune := false, sources := [{callback, #{basename := "profile-service",
                                               discover := Discover}}]} = Opts,
    ?assertEqual({ok, [{<<"somenode.foo.example.net">>, 7000}]}, Discover()),
    ?assertMatch({error, {dns_client, no_such_module, {error, undef}}},
                 ?STRATEGY:client_discover(no_such_module, <<"q">>)).

%% SRV targets as host names: the trailing dot goes.
target_host_test() ->
    ?assertEqual(<<"n1.node.dc1.consul">>, caravan_dns:target_host(<<"n1.node.dc1.consul.">>)),
    ?assertEqual(<<"n1.node.dc1.consul">>, caravan_dns:target_host("n1.node.dc1.consul")),
    ?assertEqual(<<".">>, caravan_dns:target_host(<<".">>)),
    ?assertEqual(<<>>, caravan_dns:target_host(<<>>)).

%% find_nodes/1 without libcluster loaded does connect_nodes/4's steps:
%% already connected nodes and this node are skipped, failures returned.
connect_nodes_test() ->
    Self = node(),
    ?assertEqual(ok, ?STRATEGY:connect_nodes(t, {erlang, error, []}, {erlang, nodes, [connected]},
                                             [Self])),
    ?assertEqual({error, [{'b@nowhere', false}, {'a@nowhere', false}]},
                 ?STRATEGY:connect_nodes(t, {erlang, is_list, []}, {lists, reverse, [[]]},
                                         ['a@nowhere', 'b@nowhere'])).

%% 1.0.1's InetRes answered [] when a lookup failed; caravan's does too,
%% also when the caravan application (its lookup program) is not running.
inet_res_without_caravan_running_test() ->
    %% Stopped here if another test left it running, started again after.
    Running = whereis(caravan_lookup) =/= undefined,
    Running andalso application:stop(caravan),
    try
        ?assertEqual(undefined, whereis(caravan_lookup)),
        ?assertEqual([], 'Elixir.Caravan.DnsClient.InetRes':get_nodes(
                            <<"app.service.consul">>, #{servers => ["127.0.0.1:1"]}))
    after
        Running andalso application:ensure_all_started(caravan)
    end.
