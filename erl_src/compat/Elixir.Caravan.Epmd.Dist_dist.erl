%%% @doc Caravan 1.0.1's distribution module, kept so `-proto_dist
%%% Elixir.Caravan.Epmd.Dist' keeps working (OTP appends `_dist' to the
%%% name). Since OTP 23 an epmd module alone decides the listen port, so this
%%% is plain TCP distribution: every function is inet_tcp_dist's.
-module('Elixir.Caravan.Epmd.Dist_dist').

-export([listen/1]).
-export([listen/2]).
-export([accept/1]).
-export([accept_connection/5]).
-export([setup/5]).
-export([close/1]).
-export([select/1]).
-export([address/0]).
-export([is_node_name/1]).
-export([setopts/2]).
-export([getopts/2]).

-spec listen(atom()) -> {ok, term()} | {error, term()}.
listen(Name) -> inet_tcp_dist:listen(Name).

-spec listen(atom(), string()) -> {ok, term()} | {error, term()}.
listen(Name, Host) -> inet_tcp_dist:listen(Name, Host).

-spec accept(term()) -> pid().
accept(Listen) -> inet_tcp_dist:accept(Listen).

-spec accept_connection(pid(), term(), node(), term(), term()) -> pid().
accept_connection(AcceptPid, Socket, MyNode, Allowed, SetupTime) ->
    inet_tcp_dist:accept_connection(AcceptPid, Socket, MyNode, Allowed, SetupTime).

-spec setup(node(), term(), node(), longnames | shortnames, term()) -> pid().
setup(Node, Type, MyNode, LongOrShortNames, SetupTime) ->
    inet_tcp_dist:setup(Node, Type, MyNode, LongOrShortNames, SetupTime).

-spec close(term()) -> ok.
close(Socket) -> inet_tcp_dist:close(Socket).

-spec select(node()) -> boolean().
select(Node) -> inet_tcp_dist:select(Node).

-spec address() -> term().
address() -> inet_tcp_dist:address().

-spec is_node_name(node()) -> boolean().
is_node_name(Node) -> inet_tcp_dist:is_node_name(Node).

-spec setopts(term(), [term()]) -> ok | {error, term()}.
setopts(Listen, Options) -> inet_tcp_dist:setopts(Listen, Options).

-spec getopts(term(), [atom()]) -> {ok, [term()]} | {error, term()}.
getopts(Socket, Options) -> inet_tcp_dist:getopts(Socket, Options).
