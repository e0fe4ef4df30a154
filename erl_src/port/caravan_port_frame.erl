%%% @doc The wire protocol's framing and decoding (docs/protocol.md), for
%%% caravan_port: a request as the 4-byte length prefix and its term, the
%%% program's output cut back into replies, and a reply's term read as
%%% `{Id, ok | error, Result}' with only atoms known beforehand
%%% (protocol_atoms/0). Pure: the owner keeps the buffer.
%%%
%%% The port is opened in stream mode and packets are cut here, not by the
%%% VM: with {packet, 4} the VM allocates whatever length a header announces
%%% as soon as the header arrives, so one corrupted header meant up to 4 GB
%%% allocated (measured on OTP 25: erlang:memory(system) from 11 MB to
%%% 4.3 GB; erts' sys_drivers.c ready_input). A header over the owner's
%%% limit is reported instead.
-module(caravan_port_frame).

-export([frame/1]).
-export([new/0]).
-export([received/3]).
-export([decode/1]).
-export([protocol_atoms/0]).

-export_type([buf/0]).

%% A reply not yet whole: its chunks as they came (newest first), their
%% size, and the size it will have once whole (its 4-byte length included)
%% when known.
-record(buf, {chunks = [] :: [binary()],
              len = 0 :: non_neg_integer(),
              need = undefined :: undefined | pos_integer()}).
-opaque buf() :: #buf{}.

%% @doc Term as a packet: its external format behind a 4-byte length.
-spec frame(term()) -> iodata().
frame(Term) ->
    Bin = term_to_binary(Term),
    [<<(byte_size(Bin)):32>>, Bin].

%% @doc An empty buffer.
-spec new() -> buf().
new() ->
    #buf{}.

%% @doc A chunk from the program: the packets it completes, in order, and
%% the buffer after them, or `{too_large, Len}' for a header announcing
%% more than Max bytes (the packets before it still count).
%%
%% The chunks of a reply are kept as they come and joined once it is
%% whole: appending each to what came before copied it all again (a 20 MB
%% reply took 1.8 s, a 60 MB one 16 s, and the owner answered nothing, not
%% even its liveness ping, meanwhile).
-spec received(binary(), buf(), pos_integer()) ->
          {[binary()], buf() | {too_large, pos_integer()}}.
received(Bin, #buf{chunks = []}, Max) ->
    packets(Bin, Max, []);
received(Bin, #buf{chunks = Chunks, len = Len, need = Need} = Buf, _Max)
  when is_integer(Need), Len + byte_size(Bin) < Need ->
    {[], Buf#buf{chunks = [Bin | Chunks], len = Len + byte_size(Bin)}};
received(Bin, #buf{chunks = Chunks}, Max) ->
    packets(iolist_to_binary(lists:reverse([Bin | Chunks])), Max, []).

%% @doc Every atom the program may send (docs/protocol.md). Replies are
%% decoded with `binary_to_term(_, [safe])', which refuses atoms the node does
%% not know yet; listing them here makes them known once this module loads.
-spec protocol_atoms() -> [atom()].
protocol_atoms() ->
    [ok, error, pong, chunk,
     %% info keys
     version, os_pid, uptime_ms, requests, errors, dropped, deferred, dns_inflight,
     http_inflight, entries_skipped, cancelled, cancel_noops, libcurl, not_found,
     chunked_replies, chunks,
     %% srv records; consul_health and nomad_services answers
     priority, weight, port, target, addresses, index, next_token, members, address, node, id,
     %% error reasons
     bad_term, bad_request, bad_args, unknown_op, overload,
     empty_name, name_too_long, invalid_name, port_out_of_range, no_port,
     nxdomain, servfail, refused, timeout, connection_refused, bad_answer, not_implemented,
     no_memory, cancelled, dns_error, too_large, tls_error, connection_closed, http_error,
     forbidden, not_found, server_error, http_status, stale].

%% @doc A reply's term: `{ok, Id, Reply}' with Reply as caravan_port:call/4
%% returns it, or `{error, Why}' for bytes that are no reply.
%% A chunk of a big reply comes back as `{chunk, Id, Seq, Size, Bytes}'.
-spec decode(binary()) -> {ok, integer(), {ok, term()} | {error, term()}}
                          | {chunk, pos_integer(), non_neg_integer(), pos_integer(), binary()}
                          | {error, string()}.
decode(Bin) ->
    try binary_to_term(Bin, [safe]) of
        {Id, chunk, {Seq, Size, Bytes}} when is_integer(Id), Id > 0, is_integer(Seq), Seq >= 0,
                                             is_integer(Size), Size > 0, is_binary(Bytes) ->
            {chunk, Id, Seq, Size, Bytes};
        {Id, ok, Result} when is_integer(Id) -> {ok, Id, {ok, Result}};
        {Id, error, {Reason, Detail}} when is_integer(Id), is_atom(Reason), is_binary(Detail) ->
            {ok, Id, {error, {Reason, Detail}}};
        {Id, _, _} = Other when is_integer(Id) -> {ok, Id, {error, {bad_reply, Other}}};
        _ -> {error, "not {Id, Status, Result}"}
    catch
        error:badarg -> {error, "not external term format"}
    end.

%% Cuts the bytes read so far into packets; keeps an incomplete one, unless
%% its header announces more than Max bytes.
-spec packets(binary(), pos_integer(), [binary()]) ->
          {[binary()], buf() | {too_large, pos_integer()}}.
packets(<<Len:32, _/binary>>, Max, Acc) when Len > Max ->
    {lists:reverse(Acc), {too_large, Len}};
packets(<<Len:32, Packet:Len/binary, Rest/binary>>, Max, Acc) ->
    packets(Rest, Max, [Packet | Acc]);
packets(<<>>, _Max, Acc) ->
    {lists:reverse(Acc), #buf{}};
packets(Partial, _Max, Acc) ->
    Need = case Partial of
               <<Len:32, _/binary>> -> Len + 4;
               _ -> undefined
           end,
    {lists:reverse(Acc), #buf{chunks = [Partial], len = byte_size(Partial), need = Need}}.
