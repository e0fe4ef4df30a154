%%% This node registers itself with the local Consul agent (caravan_register,
%%% issue 22), against the Consul test server with the agent's service
%%% endpoints (caravan_test_consul_agent: "Agent Service HTTP API", checks
%%% as "Checks" describes them, run against the nodes' real ports). Real
%%% nodes (OTP peer, no epmd) register and form the cluster from the health
%%% API of the same service: one application environment does both.
-module(caravan_register_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0]).
-export([init_per_suite/1, end_per_suite/1]).
-export([init_per_testcase/2, end_per_testcase/2]).
-export([three_nodes_register_and_form/1,
         kill9_goes_critical_dropped_and_reaped/1,
         init_stop_deregisters_before_connections_drop/1,
         agent_reset_registers_again/1,
         bad_token_one_error_backoff_node_up/1,
         agent_down_at_boot_registers_later/1,
         ttl_check_reported_passing/1,
         bad_config_refused_before_sending/1]).
%% Run on the test nodes.
-export([down_clock/1, down_times/1]).

-define(SERVICE, "app-dist").
-define(TICKTIME, "4").
-define(RECHECK_MS, 1000).

all() -> [{group, registration}].

groups() ->
    [{registration, [], [three_nodes_register_and_form,
                         kill9_goes_critical_dropped_and_reaped,
                         init_stop_deregisters_before_connections_drop,
                         agent_reset_registers_again,
                         bad_token_one_error_backoff_node_up,
                         agent_down_at_boot_registers_later,
                         ttl_check_reported_passing,
                         bad_config_refused_before_sending]}].

init_per_suite(Config) ->
    ok = caravan_test_peer:assert_no_epmd(),
    {ok, _} = application:ensure_all_started(caravan),
    Config.

end_per_suite(_Config) ->
    application:stop(caravan),
    ok = caravan_test_peer:assert_no_epmd().

init_per_testcase(_Case, Config) ->
    Port = caravan_test_peer:free_port(),
    [{port, Port}, {consul, caravan_test_consul:start(#{})} | Config].

end_per_testcase(_Case, Config) ->
    ok = caravan_test_peer:stop_tracked(),
    %% agent_down_at_boot_registers_later stopped it already.
    try caravan_test_catalog:stop_server(?config(consul, Config))
    catch exit:noproc -> ok
    end,
    ok = caravan_test_peer:assert_no_epmd().

%%% helpers

ips(Count) -> ["127.0.0." ++ integer_to_list(20 + I) || I <- lists:seq(1, Count)].

url(Config) -> caravan_test_catalog:url(?config(consul, Config)).

agent(Config) -> caravan_test_consul:agent(?config(consul, Config)).

%% The config a deployment writes: register, and form the cluster from the
%% same service.
env(Config, Register, Cluster) ->
    Url = url(Config),
    [{register, [{consul, maps:merge(#{service => ?SERVICE, url => Url, recheck => ?RECHECK_MS,
                                       retry_min => 200, retry_max => 2000,
                                       check => #{interval => "500ms",
                                                  deregister_after => "2s"}},
                                     Register)}]},
     {clusters, case Cluster of
                    false -> [];
                    true -> [{app, #{sources => [{consul, #{service => ?SERVICE, basename => "app",
                                                           url => Url, wait => 2000}}],
                                     retry_min => 200, prune_grace => 1000}}]
                end}].

start_node(Config, Ip, Env) ->
    Port = ?config(port, Config),
    Args = caravan_test_peer:interface_args(Ip) ++ ["-kernel", "net_ticktime", ?TICKTIME],
    {P, N} = caravan_test_peer:start_tracked("app-" ++ integer_to_list(Port), Ip, Args, #{}),
    ok = caravan_test_peer:call(P, application, load, [caravan]),
    [ok = caravan_test_peer:call(P, application, set_env, [caravan, K, V]) || {K, V} <- Env],
    {ok, _} = caravan_test_peer:call(P, application, ensure_all_started, [caravan]),
    {P, N}.

sees(Node) -> caravan_test_peer:sees(Node).

wait_mesh(Nodes, TimeoutMs) -> caravan_test_peer:wait_mesh(Nodes, TimeoutMs).

registration({P, _}) ->
    [R] = [S || #{registration := consul} = S <- caravan_test_peer:call(P, caravan, status, [])],
    R.

cluster_status({P, _}) ->
    [S] = [S || #{cluster := _} = S <- caravan_test_peer:call(P, caravan, status, [])],
    S.

id(Node) -> iolist_to_binary([?SERVICE, "-", atom_to_list(Node)]).

three(Config, Register) ->
    Nodes = [start_node(Config, Ip, env(Config, Register, true)) || Ip <- ips(3)],
    wait_mesh(Nodes, 15000),
    Nodes.

%% A clock of nodedowns on a test node: {Node, erlang:system_time(microsecond)}.
-spec down_clock([node()]) -> pid().
down_clock(Nodes) ->
    spawn(fun() ->
                  [erlang:monitor_node(N, true) || N <- Nodes],
                  down_loop([])
          end).

down_loop(Downs) ->
    receive
        {nodedown, N} -> down_loop([{N, erlang:system_time(microsecond)} | Downs]);
        {times, From} -> From ! {self(), lists:reverse(Downs)}, down_loop(Downs)
    end.

-spec down_times(pid()) -> [{node(), integer()}].
down_times(Pid) ->
    Pid ! {times, self()},
    receive {Pid, Times} -> Times after 5000 -> error(clock_stuck) end.

%%% tests

%% @doc Three nodes register (ID from the node name, Port its distribution
%% port, Address its host, Meta erlang_node) and form the cluster from the
%% health API; discovery reads back exactly the nodes' names.
three_nodes_register_and_form(Config) ->
    Port = ?config(port, Config),
    Nodes = three(Config, #{tags => ["v1"], meta => #{"zone" => "a"}}),
    Services = caravan_test_consul_agent:services(agent(Config)),
    [begin
         Id = id(N),
         {_, Host} = caravan_name:split(N),
         ?assertMatch(#{Id := #{name := <<?SERVICE>>, port := Port, status := passing}}, Services),
         #{Id := #{address := Address, meta := Meta}} = Services,
         ?assertEqual(list_to_binary(Host), Address),
         ?assertEqual(#{<<"erlang_node">> => atom_to_binary(N), <<"zone">> => <<"a">>}, Meta)
     end || {_, N} <- Nodes],
    %% The bodies as sent: Port present, the TCP check on Address:Port.
    [?assertMatch(#{<<"Port">> := Port, <<"Tags">> := [<<"v1">>],
                    <<"Check">> := #{<<"TCP">> := _, <<"Interval">> := <<"500ms">>,
                                     <<"DeregisterCriticalServiceAfter">> := <<"2s">>}}, B)
     || B <- caravan_test_consul_agent:bodies(agent(Config))],
    %% Round trip: the health API names exactly these nodes.
    {ok, Discovered} = caravan:discover({consul, #{service => ?SERVICE, basename => "app",
                                                   url => url(Config)}}),
    ?assertEqual(lists:sort([N || {_, N} <- Nodes]), Discovered),
    [?assertMatch(#{state := registered, last_error := undefined, registrations := 1},
                  registration(N)) || N <- Nodes].

%% @doc kill -9 one node: its TCP check goes critical, the others drop it,
%% and DeregisterCriticalServiceAfter (2 s here) removes it from the agent.
kill9_goes_critical_dropped_and_reaped(Config) ->
    [A, B, {PC, NC}] = three(Config, #{}),
    OsPid = list_to_integer(caravan_test_peer:call(PC, os, getpid, [])),
    caravan_test_peer:kill9(OsPid),
    Agent = agent(Config),
    Id = id(NC),
    caravan_test_peer:wait_until(
      fun() -> maps:get(status, maps:get(Id, caravan_test_consul_agent:services(Agent),
                                         #{status => gone})) =/= passing end, 5000),
    caravan_test_peer:wait_until(fun() -> not lists:member(NC, sees(A)) andalso
                                              not lists:member(NC, sees(B)) end, 10000),
    caravan_test_peer:wait_until(
      fun() -> not maps:is_key(Id, caravan_test_consul_agent:services(Agent)) end, 6000),
    ?assertMatch([_], [E || {_, reaped, I} = E <- caravan_test_consul_agent:events(Agent),
                            I =:= Id]),
    ok = caravan_test_peer:untrack({PC, NC}).


%% @doc init:stop on one node: it is deregistered BEFORE its connections
%% drop (the agent's deregister event precedes every nodedown the others
%% see), and they record it as gone by its own choice, not lost: no retry,
%% not a member. Its service usually leaves their listing before its
%% departure notice arrives, so the cluster core has it `leaving' (unlisted)
%% rather than `departed' (listed, told us it leaves); either way it is not
%% redialled, no nodedown is reported, and the notice is logged and emitted
%% as a departure.
init_stop_deregisters_before_connections_drop(Config) ->
    [A, B, {PC, NC}] = three(Config, #{}),
    caravan_test_peer:wait_until(fun() -> maps:get(members, cluster_status(A)) =:= 3 andalso
                                              maps:get(members, cluster_status(B)) =:= 3 end,
                                 5000),
    Clocks = [{P, caravan_test_peer:call(P, ?MODULE, down_clock, [[NC]])} || {P, _} <- [A, B]],
    [ok = caravan_test_peer:call(P, caravan_test_log, start, []) || {P, _} <- [A, B]],
    ok = caravan_test_peer:call(PC, init, stop, []),
    caravan_test_peer:wait_until(fun() -> not lists:member(NC, sees(A)) andalso
                                              not lists:member(NC, sees(B)) end, 10000),
    Events = caravan_test_consul_agent:events(agent(Config)),
    [Dereg] = [T || {T, deregister, I} <- Events, I =:= id(NC)],
    Downs = [T || {P, Clock} <- Clocks,
                  {N, T} <- caravan_test_peer:call(P, ?MODULE, down_times, [Clock]), N =:= NC],
    ?assertEqual(2, length(Downs)),
    ct:log("deregistered ~b us before the first nodedown", [lists:min(Downs) - Dereg]),
    [?assert(Dereg < T) || T <- Downs],
    [begin
         S = cluster_status(N),
         ct:log("~p", [S]),
         ?assert(lists:member(NC, maps:get(departed, S) ++ maps:get(leaving, S)))
     end || N <- [A, B]],
    %% And nobody redials it meanwhile.
    timer:sleep(1000),
    [?assertMatch(#{members := 2, pending_retries := 0}, cluster_status(N)) || N <- [A, B]],
    %% Each records the departure ("is leaving", the departed event), never a loss.
    Gone = atom_to_binary(NC),
    [begin
         Lines = [L || L <- caravan_test_peer:call(P, caravan_test_log, stop, []),
                       binary:match(L, Gone) =/= nomatch],
         ct:log("~p: ~p", [P, Lines]),
         ?assert(lists:any(fun(L) -> binary:match(L, <<"is leaving">>) =/= nomatch end, Lines)),
         ?assertNot(lists:any(fun(L) -> binary:match(L, <<"lost connection">>) =/= nomatch end,
                              Lines))
     end || {P, _} <- [A, B]],
    ok = caravan_test_peer:untrack({PC, NC}).

%% @doc The agent restarts without its registrations: each node notices at
%% its next recheck and registers again.
agent_reset_registers_again(Config) ->
    Nodes = three(Config, #{}),
    Agent = agent(Config),
    ok = caravan_test_consul_agent:reset(Agent),
    ?assertEqual(#{}, caravan_test_consul_agent:services(Agent)),
    caravan_test_peer:wait_until(
      fun() -> map_size(caravan_test_consul_agent:services(Agent)) =:= 3 end,
      2 * ?RECHECK_MS + 2000),
    [?assertMatch(#{state := registered, registrations := 2}, registration(N)) || N <- Nodes].

%% @doc A token without service:write: one clear error naming it, the token
%% masked even when the agent's answer repeats it, retries backing off (not
%% a storm), and the node stays up.
bad_token_one_error_backoff_node_up(Config) ->
    Token = <<"s3cret-token-4711">>,
    caravan_test_catalog:set_token(caravan_test_catalog:catalog(?config(consul, Config)),
                                   <<"the-right-one">>),
    Agent = agent(Config),
    ok = caravan_test_consul_agent:set_echo_token(Agent, true),
    [Ip | _] = ips(1),
    Node = start_node(Config, Ip, env(Config, #{token => Token, retry_min => 300,
                                                retry_max => 5000}, false)),
    timer:sleep(3000),
    R = registration(Node),
    ct:log("~p", [R]),
    ?assertMatch(#{state := retrying}, R),
    Error = maps:get(last_error, R),
    ?assertNotEqual(nomatch, binary:match(Error, <<"service:write">>)),
    ?assertEqual(nomatch, binary:match(Error, Token)),
    ?assertNotEqual(nomatch, binary:match(Error, binary:copy(<<"*">>, byte_size(Token)))),
    %% 300, 600, 1200 ms...: at most 4 attempts in 3 s (0, .3, .9, 2.1).
    Refused = [E || {_, refused, _} = E <- caravan_test_consul_agent:events(Agent)],
    ?assert(length(Refused) >= 2 andalso length(Refused) =< 4),
    ?assertEqual(pong, caravan_test_peer:call(element(1, Node), net_adm, ping, [element(2, Node)])),
    %% Nor does the process's state show it (sys:get_status, crash reports).
    [Pid] = caravan_test_peer:call(element(1, Node), caravan_register_sup, registrations, []),
    Shown = caravan_test_peer:call(element(1, Node), sys, get_status, [Pid]),
    ?assertEqual(nomatch, binary:match(term_to_binary(Shown), Token)).

%% @doc No agent at boot: the node boots anyway, shows the error, and
%% registers once the agent is there.
agent_down_at_boot_registers_later(Config) ->
    caravan_test_catalog:stop_server(?config(consul, Config)),
    AgentPort = caravan_test_peer:free_port(),
    Url = "http://127.0.0.1:" ++ integer_to_list(AgentPort),
    [Ip | _] = ips(1),
    Env = [{register, [{consul, #{service => ?SERVICE, url => Url, retry_min => 200,
                                  retry_max => 400}}]}],
    Node = start_node(Config, Ip, Env),
    caravan_test_peer:wait_until(fun() -> maps:get(attempts, registration(Node)) >= 2 end, 5000),
    ?assertMatch(#{state := retrying, last_error := <<"connection_refused", _/binary>>},
                 registration(Node)),
    Consul = caravan_test_consul:start(#{port => AgentPort}),
    try
        caravan_test_peer:wait_until(fun() -> maps:get(state, registration(Node)) =:= registered end,
                                     3000),
        ?assert(maps:is_key(id(element(2, Node)),
                            caravan_test_consul_agent:services(caravan_test_consul:agent(Consul))))
    after
        caravan_test_catalog:stop_server(Consul)
    end.

%% @doc Bad input is refused before anything is sent, naming the key.
bad_config_refused_before_sending(Config) ->
    Url = url(Config),
    Bad = [{#{service => "app.dist"}, <<"service">>},
           {#{service => lists:duplicate(64, $a)}, <<"service">>},
           {#{service => ?SERVICE, tags => [v1]}, <<"tags">>},
           {#{service => ?SERVICE, check => #{interval => "10"}}, <<"interval">>},
           {#{service => ?SERVICE, check => #{type => ttl}}, <<"ttl">>},
           {#{service => ?SERVICE, meta => #{"consul-x" => "y"}}, <<"meta">>},
           {#{service => ?SERVICE, token => 'secret-atom'}, <<"token">>},
           {#{service => ?SERVICE, bogus => 1}, <<"bogus">>},
           {#{tags => []}, <<"service">>}],
    [begin
         {error, {bad_args, Text}} = caravan:register_node({consul, Opts#{url => Url}}),
         ct:log("~s", [Text]),
         ?assertNotEqual(nomatch, binary:match(Text, Key)),
         ?assertEqual(nomatch, binary:match(Text, <<"secret-atom">>))
     end || {Opts, Key} <- Bad],
    ?assertEqual([], caravan_test_consul_agent:bodies(agent(Config))).

%% @doc A TTL check: the node reports it passing every third of its TTL, so
%% it stays passing past several TTLs; once the node is killed it expires.
ttl_check_reported_passing(Config) ->
    [Ip | _] = ips(1),
    {P, N} = Node = start_node(Config, Ip, env(Config, #{check => #{ttl => "1s"}}, false)),
    Agent = agent(Config),
    Id = id(N),
    caravan_test_peer:wait_until(fun() -> maps:get(state, registration(Node)) =:= registered end,
                                 3000),
    timer:sleep(3000),
    #{Id := #{status := Status}} = caravan_test_consul_agent:services(Agent),
    ?assertEqual(passing, Status),
    Passes = [E || {_, pass, I} = E <- caravan_test_consul_agent:events(Agent), I =:= Id],
    ?assert(length(Passes) >= 7), % one at once, then every 333 ms
    ?assertEqual([], [E || {_, ttl_expired, _} = E <- caravan_test_consul_agent:events(Agent)]),
    caravan_test_peer:kill9(list_to_integer(caravan_test_peer:call(P, os, getpid, []))),
    ok = caravan_test_peer:untrack(Node),
    caravan_test_peer:wait_until(
      fun() -> lists:keymember(ttl_expired, 2, caravan_test_consul_agent:events(Agent)) end, 3000).
