%%% A stand-in for the telemetry library (libcluster depends on it; hex is
%%% unreachable here): execute/3 with telemetry's signature, recording each
%%% event so a test can read what a cluster emitted. caravan loads it when
%%% it is on the code path, as it would the real one; without the table
%%% (capture/0) an event is dropped.
-module(telemetry).

-export([execute/3]).
-export([capture/0]).
-export([events/0]).

-define(TABLE, caravan_test_telemetry).

%% @doc Starts recording (loads this module, creates the table).
-spec capture() -> ok.
capture() ->
    Self = self(),
    spawn(fun() -> ets:new(?TABLE, [named_table, public, ordered_set]),
                   Self ! table_ready,
                   receive never -> ok end end),
    receive table_ready -> ok after 5000 -> error(no_table) end.

%% @doc telemetry:execute/3: EventName, Measurements, Metadata.
-spec execute([atom()], map(), map()) -> ok.
execute(Event, Measurements, Metadata) when is_list(Event), is_map(Measurements),
                                            is_map(Metadata) ->
    try ets:insert(?TABLE, {erlang:unique_integer([monotonic]), Event, Measurements, Metadata})
    catch error:badarg -> ok
    end,
    ok.

%% @doc Every event recorded, oldest first.
-spec events() -> [{[atom()], map(), map()}].
events() ->
    [{E, Me, Md} || {_, E, Me, Md} <- ets:tab2list(?TABLE)].
