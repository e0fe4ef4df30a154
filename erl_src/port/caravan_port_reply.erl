%%% @doc What a port owner (caravan_port) does with its program's output:
%%% cut into packets (caravan_port_frame), each reply matched to its
%%% caller, the owner's own pongs, replies nobody waits for dropped, and
%%% chunks of big replies gathered (caravan_port_chunks) and handed whole to
%%% their caller, who joins and decodes them. Runs in the owner, on its
%%% state; a protocol error is returned for the owner to act on.
-module(caravan_port_reply).

-include_lib("kernel/include/logger.hrl").
-include("caravan_port_state.hrl").

-export([received/2]).
-export([forget_monitor/2]).
-export([bump/2]).

%%%---------------------------------------------------------------------------
%%% API
%%%---------------------------------------------------------------------------

%% @doc Output of the program: each reply it completes answered in order,
%% then the rest kept; or `broken' for a header over max_reply or a
%% malformed chunk sequence, with what the owner logs as it kills the program.
-spec received(binary(), #state{}) ->
          {ok, #state{}} | {broken, too_large | protocol_error, string(), [term()], #state{}}.
received(Bin, #state{buf = Buf, max_reply = Max} = State) ->
    {Packets, Rest} = caravan_port_frame:received(Bin, Buf, Max),
    case {replies(Packets, State), Rest} of
        {{protocol_error, Why, State1}, _} ->
            %% What followed came from the program being killed.
            {broken, protocol_error, "broke the protocol: ~ts", [Why], State1};
        {State1, {too_large, Len}} ->
            {broken, too_large, "announced a reply of ~b bytes (at most ~b are read)",
             [Len, State#state.max_reply], State1};
        {State1, Buf1} ->
            {ok, State1#state{buf = Buf1}}
    end.

-spec replies([binary()], #state{}) -> #state{} | {protocol_error, string(), #state{}}.
replies([], State) ->
    State;
replies([Packet | Packets], State) ->
    case handle_reply(Packet, State) of
        {protocol_error, _, _} = Error -> Error;
        State1 -> replies(Packets, State1)
    end.

-spec handle_reply(binary(), #state{}) -> #state{} | {protocol_error, string(), #state{}}.
handle_reply(Bin, #state{pending = Pending} = State) ->
    case caravan_port_frame:decode(Bin) of
        {chunk, Id, Seq, Size, Bytes} ->
            chunk(Id, Seq, Size, Bytes, State);
        {ok, Id, _} when element(1, State#state.probe) =:= Id ->
            {Id, Timer} = State#state.probe,
            _ = erlang:cancel_timer(Timer, [{async, true}, {info, false}]),
            State#state{probe = undefined, answered = true, hangs = 0};
        {ok, Id, Reply} ->
            case maps:take(Id, Pending) of
                {{From, Timer, Mon}, Rest} ->
                    _ = erlang:cancel_timer(Timer, [{async, true}, {info, false}]),
                    gen_server:reply(From, Reply),
                    State#state{pending = Rest, monitors = forget_monitor(Mon, State),
                                answered = true, hangs = 0};
                error ->
                    %% A cancel's own reply, or the reply to a request
                    %% cancelled after the program had sent it: no caller.
                    State#state{answered = true, hangs = 0,
                                counters = bump(late_replies, State#state.counters)}
            end;
        {error, Why} ->
            ?LOG_WARNING("caravan_port: ~ts sent an unreadable reply (~ts), dropped",
                         [State#state.program, Why]),
            State
    end.


%% @doc Forgets the monitor of a caller answered or gone.
-spec forget_monitor(reference(), #state{}) -> #{reference() => pos_integer()}.
forget_monitor(Mon, #state{monitors = Monitors}) ->
    erlang:demonitor(Mon, [flush]),
    maps:remove(Mon, Monitors).

%% @doc Counts one more Key.
-spec bump(atom(), #{atom() => non_neg_integer()}) -> #{atom() => non_neg_integer()}.
bump(Key, Counters) ->
    maps:update_with(Key, fun(N) -> N + 1 end, Counters).

%%%---------------------------------------------------------------------------
%%% Internal
%%%---------------------------------------------------------------------------

%% A chunk of a big reply: kept, or the reply is whole and goes to its
%% caller, who joins and decodes it (caravan_port_chunks:join/2).
-spec chunk(pos_integer(), non_neg_integer(), pos_integer(), binary(), #state{}) ->
          #state{} | {protocol_error, string(), #state{}}.
chunk(Id, Seq, Size, Bytes, #state{pending = Pending, counters = Counters} = State) ->
    Known = if is_map_key(Id, Pending) -> waiting;
               Id < State#state.next_id -> gone;
               true -> unknown
            end,
    State1 = State#state{answered = true, hangs = 0, counters = bump(chunks, Counters)},
    case caravan_port_chunks:add(Id, Seq, Size, Bytes, Known, State#state.max_reply,
                                 State#state.chunks) of
        {error, Why} ->
            {protocol_error, Why, State1};
        {more, Chunks} ->
            State1#state{chunks = Chunks};
        {dropped, Chunks} ->
            State1#state{chunks = Chunks};
        {{whole, Parts}, Chunks} ->
            case maps:take(Id, Pending) of
                {{From, Timer, Mon}, Rest} ->
                    _ = erlang:cancel_timer(Timer, [{async, true}, {info, false}]),
                    gen_server:reply(From, {chunked, Id, Parts}),
                    State1#state{chunks = Chunks, pending = Rest,
                                 monitors = forget_monitor(Mon, State1),
                                 counters = bump(chunked_replies, State1#state.counters)};
                error ->
                    %% Its caller went without the reply being forgotten
                    %% (cancel/2 forgets it): dropped as a late reply.
                    State1#state{chunks = Chunks,
                                 counters = bump(late_replies, State1#state.counters)}
            end
    end.

