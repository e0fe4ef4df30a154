%%% The test catalog's blocking queries against what Consul and Nomad
%%% document ("Blocking Queries" in both API docs): the watch tests are only
%%% as good as the server they run against.
%%% (Not named caravan_test_catalog_tests: EUnit would run it twice, once
%%% for the module caravan_test_catalog and once on its own.)
-module(caravan_blocking_query_tests).

-include_lib("eunit/include/eunit.hrl").

-define(VIEW, {plain, fun(_Index, Instances) -> [Id || #{id := Id} <- Instances] end}).

with_catalog(Test) ->
    {setup, fun caravan_test_catalog:start/0, fun caravan_test_catalog:stop/1, Test}.

%% A query in a helper process: {Ref, Answer} arrives when it answers.
async(C, MinIndex, WaitMs) ->
    Self = self(),
    Ref = make_ref(),
    spawn_link(fun() ->
                       Self ! {Ref, caravan_test_catalog:query(C, <<"app">>, MinIndex, WaitMs, ?VIEW)}
               end),
    Ref.

%% Waits (bounded) until the catalog has received N queries in all.
received(C, N) ->
    caravan_test_peer:wait_until(fun() -> length(caravan_test_catalog:requests(C)) >= N end,
                                 5000).

answer(Ref, Ms) ->
    receive {Ref, A} -> A after Ms -> none end.

reg(C, Id) ->
    caravan_test_catalog:register(C, <<"app">>, #{id => Id, address => <<"10.0.0.1">>,
                                                 port => 4370}).

index_zero_and_lower_indexes_answer_at_once_test_() ->
    with_catalog(fun(C) ->
        ok = reg(C, <<"a">>),
        {Now, _} = caravan_test_catalog:query(C, <<"app">>, 0, 60000, ?VIEW),
        [?_assertMatch({Now, [<<"a">>]}, answer(async(C, 0, 60000), 2000)),
         ?_assertMatch({Now, [<<"a">>]}, answer(async(C, Now - 1, 60000), 2000))]
    end).

blocks_until_a_change_passes_the_index_test() ->
    C = caravan_test_catalog:start(),
    ok = reg(C, <<"a">>),
    {Now, _} = caravan_test_catalog:query(C, <<"app">>, 0, 60000, ?VIEW),
    Ref = async(C, Now, 60000),
    ok = received(C, 2),
    ?assertEqual(none, answer(Ref, 200)),
    ok = reg(C, <<"b">>),
    ?assertEqual({Now + 1, [<<"a">>, <<"b">>]}, answer(Ref, 2000)),
    caravan_test_catalog:stop(C).

%% "index >= current blocks": a change that leaves the current index at or
%% below the one a waiter sent (after the index went backwards) does not
%% wake it; its wait running out does, with the lower index.
change_below_a_waiters_index_does_not_wake_it_test() ->
    C = caravan_test_catalog:start(),
    [ok = reg(C, Id) || Id <- [<<"a">>, <<"b">>, <<"c">>]],
    {High, _} = caravan_test_catalog:query(C, <<"app">>, 0, 60000, ?VIEW),
    Ref = async(C, High, 1000),
    ok = caravan_test_catalog:set_index(C, 1),
    ok = caravan_test_catalog:deregister(C, <<"app">>, <<"a">>),
    ?assertEqual(none, answer(Ref, 500)),
    ?assertEqual({2, [<<"b">>, <<"c">>]}, answer(Ref, 3000)),
    caravan_test_catalog:stop(C).

%% The wait gets up to wait/16 of jitter, never less than the wait.
wait_runs_out_with_jitter_test() ->
    C = caravan_test_catalog:start(),
    {Now, _} = caravan_test_catalog:query(C, <<"app">>, 0, 60000, ?VIEW),
    T0 = erlang:monotonic_time(millisecond),
    {Now, []} = caravan_test_catalog:query(C, <<"app">>, Now, 800, ?VIEW),
    Took = erlang:monotonic_time(millisecond) - T0,
    ?assert(Took >= 800),
    caravan_test_catalog:stop(C).

requests_lists_the_indexes_sent_test() ->
    C = caravan_test_catalog:start(),
    {Now, _} = caravan_test_catalog:query(C, <<"app">>, 0, 60000, ?VIEW),
    _ = caravan_test_catalog:query(C, <<"app">>, Now - 1, 60000, ?VIEW),
    ?assertEqual([0, Now - 1], caravan_test_catalog:requests(C)),
    caravan_test_catalog:stop(C).
