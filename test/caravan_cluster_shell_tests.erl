%%% The cluster shell (caravan_cluster) against what its users hand it:
%%% callback sources that answer junk or hang, connect MFAs that raise,
%%% hang or answer garbage, and a cluster stopped with a dial in flight.
%%% One real cluster process per test, in this (non-distributed) node:
%%% nothing here needs a peer, only what the shell does with the answers.
-module(caravan_cluster_shell_tests).

-include_lib("eunit/include/eunit.hrl").

-export([hanging_connect/2, garbage_connect/2, raising_connect/2]).

-define(GOOD, {ok, [{"127.0.0.1", 4001}, {"127.0.0.1", 4002}]}).
%% Every wait is bounded; the machine is shared, so generously.
-define(WAIT_MS, 15000).

%% caravan_cluster's own doc: a cluster started while caravan's supervisor
%% (and so its pg scope) is not running is simply not listed in
%% caravan:status(). Before the fix it crashed in init: pg:join/3 on a
%% scope that is not running exits (noproc), it does not raise badarg.
starts_without_the_pg_scope_test() ->
    _ = application:stop(caravan),
    ?assertEqual(undefined, whereis(caravan_clusters)),
    set(no_scope, ?GOOD),
    C = start(no_scope, #{}),
    try
        wait(fun() -> listed(C) =:= 2 end),
        ?assertEqual([], caravan_cluster:all())
    after
        stop(C)
    end.

%%%---------------------------------------------------------------------------
%%% Connect MFAs (a libcluster user's own)
%%%---------------------------------------------------------------------------

-spec hanging_connect(pid(), node()) -> no_return().
hanging_connect(Test, Node) ->
    Test ! {dialling, self(), Node},
    receive after infinity -> ok end.

-spec garbage_connect(pid(), node()) -> term().
garbage_connect(_Test, _Node) ->
    count_dial(),
    {what, is, this}.

-spec raising_connect(pid(), node()) -> no_return().
raising_connect(_Test, _Node) ->
    count_dial(),
    error(user_bug).

count_dial() ->
    _ = ets:update_counter(caravan_shell_test_dials, n, 1, {n, 0}),
    ok.

dials() ->
    try ets:lookup_element(caravan_shell_test_dials, n, 2)
    catch error:badarg -> 0
    end.

%%%---------------------------------------------------------------------------
%%% Helpers
%%%---------------------------------------------------------------------------

%% The callback's answer, read on every call (a hang when asked to).
set(Key, Answer) ->
    persistent_term:put({?MODULE, Key}, Answer).

answer(Key) ->
    case persistent_term:get({?MODULE, Key}) of
        hang -> receive after infinity -> ok end;
        Answer -> Answer
    end.

start(Key, Extra) ->
    Table = caravan_shell_test_dials,
    _ = [ets:delete(Table) || ets:whereis(Table) =/= undefined],
    Self = self(),
    %% The table outlives the dialler processes that write to it.
    Owner = spawn(fun() -> ets:new(Table, [named_table, public]),
                           Self ! table, receive stop -> ok end end),
    receive table -> ok after ?WAIT_MS -> error(no_table) end,
    put(table_owner, Owner),
    Config = maps:merge(#{sources => [{callback, #{basename => "app",
                                                   discover => fun() -> answer(Key) end}}],
                          poll_interval => 50, self_listed => false, prune => false,
                          retry_min => 20, retry_max => 40,
                          connect => {?MODULE, garbage_connect, [self()]}},
                        Extra),
    Name = list_to_atom("shell_test_" ++ integer_to_list(erlang:unique_integer([positive]))),
    {ok, C} = caravan_cluster:start_link(Name, Config),
    unlink(C),
    C.

stop(C) ->
    _ = [caravan_cluster:stop(C) || is_process_alive(C)],
    case get(table_owner) of
        undefined -> ok;
        Owner -> Owner ! stop
    end,
    ok.

status_source(C) ->
    [Source] = maps:get(sources, caravan_cluster:status(C)),
    Source.

listed(C) -> maps:get(listed, caravan_cluster:status(C)).

last_error(C) -> maps:get(last_error, status_source(C)).

wait(Cond) ->
    wait(Cond, erlang:monotonic_time(millisecond) + ?WAIT_MS).

wait(Cond, Deadline) ->
    case Cond() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error(timeout_waiting);
                false -> timer:sleep(20), wait(Cond, Deadline)
            end
    end.
