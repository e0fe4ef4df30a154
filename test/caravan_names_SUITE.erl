%%% Node names are atoms, and atoms are never freed: the caps on what one
%%% answer may list (`max_members', DNS answers too) and on the distinct
%%% names a cluster sees in a window (`max_names', `names_window') keep a
%%% lying server from minting atoms without end. Past a cap the answer is
%%% refused with an error (status and log), the last listing stands, and the
%%% VM's atom count stops growing.
-module(caravan_names_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0]).
-export([no_connect/1]).
-export([lying_consul_mints_no_atoms_past_max_names/1,
         lying_dns_mints_no_atoms_past_max_names/1,
         lying_callback_mints_no_atoms_past_max_names/1,
         dns_answers_obey_max_members/1,
         names_caps_are_checked_at_start/1]).

%% Each answer of the lying servers below names this many nodes no answer
%% named before.
-define(FRESH, 20).
-define(MAX_NAMES, 100).

-spec suite() -> list().
suite() ->
    [{timetrap, {minutes, 2}}, {ct_hooks, [caravan_test_app]}].

-spec all() -> list().
all() ->
    [lying_consul_mints_no_atoms_past_max_names, lying_dns_mints_no_atoms_past_max_names,
     lying_callback_mints_no_atoms_past_max_names,
     dns_answers_obey_max_members, names_caps_are_checked_at_start].

%% @doc The clusters here dial nobody: the test node is not distributed.
-spec no_connect(node()) -> false.
no_connect(_Node) ->
    false.

%%% helpers

cluster(Name, Source) ->
    {ok, _} = caravan:start_cluster(Name, #{sources => [Source], poll_interval => 50,
                                            prune => false, max_names => ?MAX_NAMES,
                                            connect => {?MODULE, no_connect, []}}),
    ok.

status(Name) ->
    hd([S || #{cluster := C} = S <- caravan:status(), C =:= Name]).

%% Polls Name's status (every 20 ms, at most Ms) until Pred holds; the
%% status it held for.
wait_status(Name, Pred, Ms) when Ms > 0 ->
    S = status(Name),
    case Pred(S) of
        true -> S;
        false -> timer:sleep(20), wait_status(Name, Pred, Ms - 20)
    end;
wait_status(Name, _Pred, _Ms) ->
    ct:fail({status_never_reached, status(Name)}).

refused(#{names := #{names_refused := N}}) -> N.

%% The atom count grows by less than one refused answer's new names while
%% the cluster refuses two more answers: with an atom made before the
%% check, each refused answer would add ?FRESH.
assert_atoms_stop(Name) ->
    S0 = wait_status(Name, fun(S) -> refused(S) >= 1 end, 30000),
    A0 = erlang:system_info(atom_count),
    S1 = wait_status(Name, fun(S) -> refused(S) >= refused(S0) + 2 end, 30000),
    A1 = erlang:system_info(atom_count),
    ct:log("refused ~b -> ~b, atoms ~b -> ~b; ~p", [refused(S0), refused(S1), A0, A1, S1]),
    ?assert(A1 - A0 < ?FRESH),
    #{names := #{names_seen := Seen, max_names := ?MAX_NAMES}, sources := [Src]} = S1,
    ?assert(Seen =< ?MAX_NAMES),
    %% The last listing stands, and status says why nothing newer does.
    ?assertMatch(#{listed := ?FRESH, last_error := {too_many_names, _}}, Src),
    S1.

%%% cases

%% A Consul whose every answer lists ?FRESH instances at addresses it never
%% gave before (a churn process replaces them every 30 ms): the cluster
%% takes answers until it has seen ?MAX_NAMES names, then refuses them, and
%% no atom is made for a refused one.
-spec lying_consul_mints_no_atoms_past_max_names(list()) -> ok.
lying_consul_mints_no_atoms_past_max_names(_Config) ->
    Server = caravan_test_consul:start(#{}),
    C = caravan_test_catalog:catalog(Server),
    Churn = spawn_link(fun() -> churn(C, 0, [], 3000) end),
    try
        cluster(names_consul, {consul, #{service => "app", basename => "app", wait => 1000,
                                         url => caravan_test_catalog:url(Server)}}),
        _ = assert_atoms_stop(names_consul),
        ok
    after
        unlink(Churn),
        exit(Churn, kill),
        ok = caravan:stop_cluster(names_consul),
        caravan_test_catalog:stop_server(Server)
    end.

%% A DNS server whose every SRV answer gives its targets addresses no
%% answer gave before, polled every 50 ms: the same cap, and no atom for a
%% refused answer.
-spec lying_dns_mints_no_atoms_past_max_names(list()) -> ok.
lying_dns_mints_no_atoms_past_max_names(_Config) ->
    R = caravan_test_dns_responder:start({fresh, ?FRESH}),
    try
        cluster(names_dns, {dns, #{query => "web.service.consul", basename => "web",
                                   servers => [caravan_test_dns_responder:server(R)]}}),
        _ = assert_atoms_stop(names_dns),
        ok
    after
        ok = caravan:stop_cluster(names_dns),
        caravan_test_dns_responder:stop(R)
    end.

%% Replaces the service's instances with ?FRESH new ones, Steps times.
churn(_C, _Step, _Ids, 0) ->
    ok;
churn(C, Step, Ids, Steps) ->
    New = [begin
               I = Step * ?FRESH + K,
               Id = integer_to_binary(I),
               ok = caravan_test_catalog:register(
                      C, <<"app">>, #{id => Id, port => 4370,
                                      address => list_to_binary(inet:ntoa({127, 1, I div 250,
                                                                           I rem 250 + 1}))}),
               Id
           end || K <- lists:seq(1, ?FRESH)],
    [ok = caravan_test_catalog:deregister(C, <<"app">>, Id) || Id <- Ids],
    timer:sleep(30),
    churn(C, Step + 1, New, Steps - 1).

%% A polled source that answers ?FRESH new hosts on every poll: the same
%% cap, judged before any atom is made.
-spec lying_callback_mints_no_atoms_past_max_names(list()) -> ok.
lying_callback_mints_no_atoms_past_max_names(_Config) ->
    Counter = counters:new(1, []),
    Discover = fun() ->
                       counters:add(Counter, 1, 1),
                       Base = counters:get(Counter, 1) * ?FRESH,
                       {ok, [{<<"cb-host-", (integer_to_binary(Base + K))/binary>>, 4370}
                             || K <- lists:seq(1, ?FRESH)]}
               end,
    cluster(names_callback, {callback, #{basename => "app", discover => Discover}}),
    try
        _ = assert_atoms_stop(names_callback),
        ok
    after
        ok = caravan:stop_cluster(names_callback)
    end.

%% SRV and address answers with more records than max_members are refused
%% (too_large), as Consul's and Nomad's are; at the cap they are taken.
-spec dns_answers_obey_max_members(list()) -> ok.
dns_answers_obey_max_members(_Config) ->
    R = caravan_test_dns_responder:start({consul, 3}),
    Options = #{servers => [caravan_test_dns_responder:server(R)], transport => tcp},
    try
        ?assertMatch({error, {too_large, <<"the DNS answer lists more than 2 records", _/binary>>}},
                     caravan:lookup_srv("web.service.consul", Options#{max_members => 2})),
        ?assertMatch({ok, [_, _, _]},
                     caravan:lookup_srv("web.service.consul", Options#{max_members => 3})),
        ?assertMatch({error, {too_large, _}},
                     caravan:discover({dns, Options#{query => "web.service.consul",
                                                     basename => "web", max_members => 2}})),
        ?assertMatch({ok, [_, _, _]},
                     caravan:discover({dns, Options#{query => "web.service.consul",
                                                     basename => "web"}}))
    after
        caravan_test_dns_responder:stop(R)
    end.

%% The caps are settings: a bad value is refused at start, naming the key.
-spec names_caps_are_checked_at_start(list()) -> ok.
names_caps_are_checked_at_start(_Config) ->
    Source = {callback, #{basename => "app", discover => fun() -> {ok, []} end}},
    ?assertMatch({error, {bad_config, max_names, 0}},
                 caravan:start_cluster(bad_names, #{sources => [Source], max_names => 0})),
    ?assertMatch({error, {bad_config, names_window, x}},
                 caravan:start_cluster(bad_names, #{sources => [Source], names_window => x})),
    ?assertMatch({error, _},
                 caravan:start_cluster(bad_names, #{sources => [{dns, #{query => "a.b",
                                                                         basename => "a",
                                                                         max_members => 0}}]})).
