%%% @doc The cancels a port owner (caravan_port) owes its program: for each
%%% request nobody waits for any more (its caller gone or timed out), a
%%% `cancel' request (docs/protocol.md). The program sends no reply for the
%%% id after it; one it sent before, and the cancel's own reply, are
%%% dropped by the owner as no caller's. A cancel the busy port refuses
%%% waits and is sent again shortly (`retry_cancels' comes to the owner):
%%% dropped, it would leave a blocking query holding its slot in the
%%% program for up to wait + timeout.
-module(caravan_port_cancel).

-export([new/0]).
-export([queue/2]).
-export([send/4]).
-export([retry_fired/1]).
-export([clear/1]).
-export([unsent/1]).

-export_type([cancels/0]).

%% A cancel the busy port refused is sent again after this long: the
%% program drains its stdin in well under it.
-define(CANCEL_RETRY_MS, 10).

%% Cancels not sent yet (the port was busy), oldest last, and whether a
%% retry is scheduled.
-record(cancels, {unsent = [] :: [pos_integer()],
                  armed = false :: boolean()}).
-opaque cancels() :: #cancels{}.

-type counters() :: #{atom() => non_neg_integer()}.

%% @doc No cancel owed.
-spec new() -> cancels().
new() ->
    #cancels{}.

%% @doc Request Id is owed a cancel.
-spec queue(pos_integer(), cancels()) -> cancels().
queue(Id, #cancels{unsent = Unsent} = C) ->
    C#cancels{unsent = [Id | Unsent]}.

%% @doc Sends the cancels owed, oldest first, each with the next request
%% id; counts `cancels_sent', and `cancels_delayed' when the port is busy
%% (the rest wait for a retry). With no program, none is owed any more.
-spec send(port() | undefined, pos_integer(), counters(), cancels()) ->
          {pos_integer(), counters(), cancels()}.
send(_Port, NextId, Counters, #cancels{unsent = []} = C) ->
    {NextId, Counters, C};
send(undefined, NextId, Counters, C) ->
    {NextId, Counters, C#cancels{unsent = []}}; % the program and its requests are gone
send(Port, NextId, Counters, #cancels{unsent = Unsent} = C) ->
    send(lists:reverse(Unsent), Port, NextId, Counters, C#cancels{unsent = []}).

%% @doc The retry timer fired: another may be armed.
-spec retry_fired(cancels()) -> cancels().
retry_fired(C) ->
    C#cancels{armed = false}.

%% @doc The program is gone, and with it what it was owed.
-spec clear(cancels()) -> cancels().
clear(C) ->
    C#cancels{unsent = []}.

%% @doc How many cancels wait for the busy port.
-spec unsent(cancels()) -> non_neg_integer().
unsent(#cancels{unsent = Unsent}) ->
    length(Unsent).

-spec send([pos_integer()], port(), pos_integer(), counters(), cancels()) ->
          {pos_integer(), counters(), cancels()}.
send([], _Port, NextId, Counters, C) ->
    {NextId, Counters, C};
send([Id | More] = Ids, Port, NextId, Counters, C) ->
    Frame = caravan_port_frame:frame({NextId, cancel, #{id => Id}}),
    try erlang:port_command(Port, Frame, [nosuspend]) of
        true ->
            send(More, Port, NextId + 1, bump(cancels_sent, Counters), C);
        false ->
            C1 = C#cancels{unsent = lists:reverse(Ids)},
            Counters1 = bump(cancels_delayed, Counters),
            case C#cancels.armed of
                true ->
                    {NextId, Counters1, C1};
                false ->
                    _ = erlang:send_after(?CANCEL_RETRY_MS, self(), retry_cancels),
                    {NextId, Counters1, C1#cancels{armed = true}}
            end
    catch
        error:badarg -> {NextId, Counters, C#cancels{unsent = []}} % closed; its exit follows
    end.

-spec bump(atom(), counters()) -> counters().
bump(Key, Counters) ->
    maps:update_with(Key, fun(N) -> N + 1 end, Counters).
