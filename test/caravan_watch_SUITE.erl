%%% The index rules of caravan_watch (through caravan:watch/2) against the
%%% Consul and Nomad test servers, whose catalog blocks as the real servers
%%% do (see caravan_test_catalog). The rules are Consul's API docs,
%%% "Features - Blocking Queries - Implementation Details", which Nomad's
%%% blocking queries share:
%%% - "Reset the index if it goes backwards": the next query carries index 0;
%%% - "Sanity check index is greater than zero": an index of 0 from the
%%%   server is never sent back, or the watch would ask without blocking,
%%%   over and over;
%%% - when nothing changes, a watch asks about once per `wait';
%%% - a failing server is asked again after 200 ms, then after twice as
%%%   long each time, toward 15 s: an outage costs it a few requests, not
%%%   four or five a second.
%%% Each case fails when its rule is taken out of caravan_watch.erl (checked
%%% by planting: see test/mutants/).
-module(caravan_watch_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0]).
-export([init_per_group/2, end_per_group/2]).
-export([init_per_testcase/2, end_per_testcase/2]).
-export([quiet_watch_asks_once_per_wait/1, index_zero_never_sent_back/1,
         index_backwards_starts_over/1, change_after_backwards_seen_promptly/1,
         failing_server_backed_off/1]).

%% Short waits scale the minute down: a watch that asks once per `wait'
%% asks 60/WAIT_S times a minute. 1 s is far above the watch's 20 ms floor
%% between queries, so a busy loop shows as tens of requests a second.
-define(WAIT_MS, 1000).
-define(OBSERVE_MS, 4000).

-spec suite() -> list().
suite() ->
    [{timetrap, {minutes, 2}}, {ct_hooks, [caravan_test_app]}].

-spec all() -> list().
all() ->
    [{group, consul}, {group, nomad}].

%% The cases spend their time waiting on the clock (a wait, a window of
%% observation, a backoff), each against a server and a watch of its own,
%% counting only its own server's requests: a group's cases run side by
%% side, in the time of the longest (8 s) instead of the sum (30 s).
-spec groups() -> list().
groups() ->
    Cases = [quiet_watch_asks_once_per_wait, index_zero_never_sent_back,
             index_backwards_starts_over, change_after_backwards_seen_promptly,
             failing_server_backed_off, server_that_never_blocks_asked_once_per_wait],
    [{consul, [parallel], Cases}, {nomad, [parallel], Cases}].

-spec init_per_group(atom(), list()) -> list().
init_per_group(Kind, Config) ->
    [{kind, Kind} | Config].

-spec end_per_group(atom(), list()) -> ok.
end_per_group(_, _Config) ->
    ok.

-spec init_per_testcase(atom(), list()) -> list().
init_per_testcase(_Case, Config) ->
    Server = case ?config(kind, Config) of
                 consul -> caravan_test_consul:start(#{});
                 nomad -> caravan_test_nomad:start(#{})
             end,
    [{server, Server} | Config].

-spec end_per_testcase(atom(), list()) -> ok.
end_per_testcase(_Case, Config) ->
    caravan_test_catalog:stop_server(?config(server, Config)).

%%% helpers

catalog(Config) -> caravan_test_catalog:catalog(?config(server, Config)).

reg(Config, Id, Port) ->
    caravan_test_catalog:register(catalog(Config), <<"app">>,
                                  #{id => Id, address => <<"10.0.0.1">>, port => Port}).

watch(Config, WaitMs) ->
    Options = #{service => "app", basename => "app", wait => WaitMs,
                url => caravan_test_catalog:url(?config(server, Config))},
    {ok, W} = caravan:watch({?config(kind, Config), Options}, self()),
    W.

next_event(Watch, Ms) ->
    receive {caravan_watch, Watch, Event} -> Event after Ms -> none end.

%% Polls until the catalog has seen N queries in all; their indexes.
requests_at_least(C, N, Ms) when Ms > 0 ->
    case caravan_test_catalog:requests(C) of
        R when length(R) >= N -> R;
        _ -> timer:sleep(20), requests_at_least(C, N, Ms - 20)
    end;
requests_at_least(C, N, _) ->
    ct:fail({fewer_requests_than, N, caravan_test_catalog:requests(C)}).

%% Requests made over ?OBSERVE_MS from now.
count_requests(C) ->
    Before = length(caravan_test_catalog:requests(C)),
    timer:sleep(?OBSERVE_MS),
    length(caravan_test_catalog:requests(C)) - Before.

%% A watch facing index 0 makes two queries per wait (a blocking one, then
%% after the reset one that does not block); allow three, plus the ones in
%% flight at each end. A busy loop makes ~50 a second (one per 20 ms).
max_quiet_requests() ->
    3 * (?OBSERVE_MS div ?WAIT_MS) + 2.

%%% cases

%% With nothing changing, the watch asks once per `wait', and no more:
%% a minute of quiet costs 60 s / wait requests.
-spec quiet_watch_asks_once_per_wait(list()) -> ok.
quiet_watch_asks_once_per_wait(Config) ->
    ok = reg(Config, <<"a">>, 4370),
    W = watch(Config, ?WAIT_MS),
    {members, ['app-4370@10.0.0.1']} = next_event(W, 5000),
    N = count_requests(catalog(Config)),
    ct:log("~b requests in ~b ms with wait ~b ms", [N, ?OBSERVE_MS, ?WAIT_MS]),
    %% One blocking query per wait: OBSERVE/WAIT of them, give or take the
    %% ones in flight at each end and the jitter the server adds.
    ?assert(N >= (?OBSERVE_MS div ?WAIT_MS) - 2),
    ?assert(N =< (?OBSERVE_MS div ?WAIT_MS) + 2),
    ?assertEqual(none, next_event(W, 0)),
    caravan:unwatch(W).

%% A server answering index 0 (the bug Consul's docs tell clients to guard
%% against) must not turn the watch into a busy loop: the watch never sends
%% 0 twice in a row, and its rate stays bounded by the wait.
-spec index_zero_never_sent_back(list()) -> ok.
index_zero_never_sent_back(Config) ->
    C = catalog(Config),
    ok = reg(Config, <<"a">>, 4370),
    W = watch(Config, ?WAIT_MS),
    {members, _} = next_event(W, 5000),
    ok = caravan_test_catalog:set_index(C, 0),
    N = count_requests(C),
    Sent = caravan_test_catalog:requests(C),
    ct:log("~b requests in ~b ms with wait ~b ms; indexes sent: ~w",
           [N, ?OBSERVE_MS, ?WAIT_MS, Sent]),
    ?assert(N =< max_quiet_requests()),
    %% The first query carries 0 (nothing known yet); after that, a 0 is
    %% followed by a positive index, which blocks.
    ?assertEqual([], [pair || [0, 0] <- pairs(tl(Sent))]),
    ?assertEqual(none, next_event(W, 0)),
    caravan:unwatch(W).

%% The index moving backwards (a snapshot restore, a new leader) makes the
%% watch start over: its next query carries index 0 and reads everything.
-spec index_backwards_starts_over(list()) -> ok.
index_backwards_starts_over(Config) ->
    C = catalog(Config),
    [ok = reg(Config, integer_to_binary(I), 4000 + I) || I <- lists:seq(1, 5)],
    W = watch(Config, ?WAIT_MS),
    {members, [_, _, _, _, _]} = next_event(W, 5000),
    %% The first query (index 0) and the blocking one after it.
    [0, High] = requests_at_least(C, 2, 5000),
    ok = caravan_test_catalog:set_index(C, 2),
    %% The blocked query answers with index 2 when its wait runs out; the
    %% watch's next query is the fresh start, and the one after that blocks
    %% on the index it got, not on the old one.
    Sent = requests_at_least(C, 4, 10 * ?WAIT_MS),
    ct:log("index was ~b, set to 2; indexes sent: ~w", [High, Sent]),
    ?assertMatch([0, High, 0, 2 | _], Sent),
    caravan:unwatch(W).

%% What the reset is for: after the index went backwards, a change is seen
%% as soon as it happens, not after the index climbs back past the old one
%% or a full wait later.
-spec change_after_backwards_seen_promptly(list()) -> ok.
change_after_backwards_seen_promptly(Config) ->
    C = catalog(Config),
    Wait = 5000,
    [ok = reg(Config, integer_to_binary(I), 4000 + I) || I <- lists:seq(1, 5)],
    W = watch(Config, Wait),
    {members, [_, _, _, _, _]} = next_event(W, 5000),
    _ = requests_at_least(C, 2, 5000), % blocking now
    ok = caravan_test_catalog:set_index(C, 2),
    %% The backwards answer comes when the blocked query's wait runs out,
    %% and then the watch asks again (twice, if it starts over).
    _ = requests_at_least(C, 4, 3 * Wait),
    T0 = erlang:monotonic_time(millisecond),
    ok = caravan_test_catalog:deregister(C, <<"app">>, <<"1">>),
    {members, Four} = next_event(W, Wait div 2),
    ct:log("change seen after ~b ms", [erlang:monotonic_time(millisecond) - T0]),
    ?assertEqual(4, length(Four)),
    caravan:unwatch(W).

%% Errors back off: after the first failure the watch asks again at about
%% 0.2, 0.65, 1.5 and 3.3 s (each delay twice the last, plus up to a
%% quarter of jitter), so ?OBSERVE_MS (4 s) holds at most 4 retries; allow
%% 6. A backoff that never grew asked every 200-250 ms: 16 or more.
failing_server_backed_off(Config) ->
    C = catalog(Config),
    ok = caravan_test_catalog:set_fault(C, {status, 500, <<"boom">>}),
    W = watch(Config, ?WAIT_MS),
    {error, _} = next_event(W, 5000),
    Before = caravan_test_catalog:faulted(C),
    timer:sleep(?OBSERVE_MS), % the window the requests are counted over
    N = caravan_test_catalog:faulted(C) - Before,
    ct:log("~b requests to a failing server in the ~b ms after its first failure",
           [N, ?OBSERVE_MS]),
    ?assert(N >= 2, {too_few_retries, N}),
    ?assert(N =< 6, {not_backing_off, N}),
    %% The server coming back is seen (the next retry is due within 4 s).
    ok = caravan_test_catalog:set_fault(C, none),
    ok = reg(Config, <<"1">>, 4001),
    {members, [_]} = next_event(W, 20000),
    caravan:unwatch(W).

%% Issue 18 (attacker): a server that answers at once with an unchanged
%% index (always the same one, or always 0) made the watch ask every 20 ms
%% or so (~21 a second seen), where the README says "about once per wait
%% when nothing changes". An answer without progress now waits out the
%% rest of the wait before the next query (Consul's "Blocking Queries":
%% rate-limit); a change still shows at the next answer.
-spec server_that_never_blocks_asked_once_per_wait(list()) -> ok.
server_that_never_blocks_asked_once_per_wait(Config) ->
    C = catalog(Config),
    ok = reg(Config, <<"a">>, 4370),
    ok = caravan_test_catalog:set_blocking(C, false),
    W = watch(Config, ?WAIT_MS),
    {members, ['app-4370@10.0.0.1']} = next_event(W, 5000),
    Same = count_requests(C),
    ok = caravan_test_catalog:set_index(C, 0),
    Zero = count_requests(C),
    ct:log("~b requests in ~b ms with wait ~b ms and the same index, ~b with index 0",
           [Same, ?OBSERVE_MS, ?WAIT_MS, Zero]),
    ?assert(Same =< max_quiet_requests(), {busy_loop, Same}),
    ?assert(Zero =< max_quiet_requests(), {busy_loop, Zero}),
    ?assertEqual(none, next_event(W, 0)),
    %% A change (a new index) is still seen, at the next query.
    ok = reg(Config, <<"b">>, 4371),
    {members, [_, _]} = next_event(W, 3 * ?WAIT_MS),
    caravan:unwatch(W).

pairs([A, B | T]) -> [[A, B] | pairs([B | T])];
pairs(_) -> [].
