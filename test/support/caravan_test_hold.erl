%%% An HTTP server on 127.0.0.1 that reads every request and never answers
%%% it, as a Consul agent holds a blocking query open, and keeps its own
%%% count of open connections: a connection counts from its accept until
%%% the client closes it. Tests read the count to see whether a client let
%%% go of a request (caravan_cancel_SUITE).
-module(caravan_test_hold).

-export([start/0, stop/1, url/1, open/1, accepted/1]).

%% @doc A server on a free port.
-spec start() -> #{pid := pid(), port := inet:port_number()}.
start() ->
    Self = self(),
    Pid = spawn(fun() -> listen(Self) end),
    receive
        {Pid, listening, Port} -> #{pid => Pid, port => Port}
    after 5000 -> error(hold_server_not_started)
    end.

-spec stop(#{pid := pid()}) -> ok.
stop(#{pid := Pid}) ->
    Ref = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', Ref, _, _, _} -> ok end.

-spec url(#{port := inet:port_number()}) -> binary().
url(#{port := Port}) -> <<"http://127.0.0.1:", (integer_to_binary(Port))/binary>>.

%% @doc Connections open now.
-spec open(#{pid := pid()}) -> non_neg_integer().
open(Server) -> element(1, counts(Server)).

%% @doc Connections accepted since the start.
-spec accepted(#{pid := pid()}) -> non_neg_integer().
accepted(Server) -> element(2, counts(Server)).

-spec counts(#{pid := pid()}) -> {non_neg_integer(), non_neg_integer()}.
counts(#{pid := Pid}) ->
    Ref = make_ref(),
    Pid ! {counts, self(), Ref},
    receive {Ref, Counts} -> Counts after 5000 -> error(hold_server_silent) end.

-spec listen(pid()) -> no_return().
listen(Parent) ->
    {ok, L} = gen_tcp:listen(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                 {reuseaddr, true}, {backlog, 1024}]),
    {ok, Port} = inet:port(L),
    Self = self(),
    _ = spawn_link(fun() -> accept_loop(L, Self) end),
    Parent ! {self(), listening, Port},
    loop(0, 0).

-spec accept_loop(gen_tcp:socket(), pid()) -> no_return().
accept_loop(L, Server) ->
    {ok, S} = gen_tcp:accept(L),
    Server ! accepted,
    %% Active: the socket's close arrives as a message; what the client
    %% sends (its request) is read and ignored.
    Pid = spawn_link(fun() -> receive go -> ok end, hold(S, Server) end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept_loop(L, Server).

-spec hold(gen_tcp:socket(), pid()) -> ok.
hold(S, Server) ->
    ok = inet:setopts(S, [{active, true}]),
    hold_loop(S, Server).

-spec hold_loop(gen_tcp:socket(), pid()) -> ok.
hold_loop(S, Server) ->
    receive
        {tcp, S, _} -> hold_loop(S, Server);
        {tcp_closed, S} -> Server ! closed, ok;
        {tcp_error, S, _} -> Server ! closed, gen_tcp:close(S)
    end.

-spec loop(non_neg_integer(), non_neg_integer()) -> no_return().
loop(Open, Accepted) ->
    receive
        accepted -> loop(Open + 1, Accepted + 1);
        closed -> loop(Open - 1, Accepted);
        {counts, From, Ref} -> From ! {Ref, {Open, Accepted}}, loop(Open, Accepted)
    end.
