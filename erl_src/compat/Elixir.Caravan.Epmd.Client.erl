%%% @doc Caravan 1.0.1's epmd module name, kept so its users' flags
%%% (`-epmd_module Elixir.Caravan.Epmd.Client') keep working: the callbacks
%%% are caravan_epmd's, with two differences that keep 1.0.1's behaviour:
%%%
%%% - The listen port. 1.0.1's client had no listen_port_please/2, so on
%%%   OTP 23+ erl_epmd's answered: `-erl_epmd_port P' when given (else the
%%%   port range, which 1.0.1's Dist_dist set to the name's port).
%%%   Deployments behind port mapping rely on that: the name carries the
%%%   outside port (what peers dial), the VM listens on the inside one. So
%%%   here `-erl_epmd_port' decides the listen port when set; otherwise the
%%%   name does, as with caravan_epmd. Peers are still dialled at the port
%%%   their name carries.
%%% - register_node/2,3 needs no process: with caravan_epmd not running
%%%   (a direct call, as 1.0.1's pure function allowed) it answers
%%%   `{ok, -1}' instead of exiting.
-module('Elixir.Caravan.Epmd.Client').

-include("../epmd/caravan_epmd_callbacks.hrl").

-spec start_link() -> {ok, pid()}.
start_link() -> caravan_epmd:start_link().

-spec register_node(string(), inet:port_number()) -> {ok, -1}.
register_node(Name, Port) -> register_node(Name, Port, inet_tcp).

-spec register_node(string(), inet:port_number(), atom()) -> {ok, -1}.
register_node(Name, Port, Driver) ->
    case whereis(caravan_epmd) of
        undefined -> {ok, -1};
        _ -> caravan_epmd:register_node(Name, Port, Driver)
    end.

-spec listen_port_please(atom() | string(), term()) ->
          {ok, inet:port_number()} | {error, term()}.
listen_port_please(Name, Host) ->
    case erl_epmd_port() of
        {ok, Port} -> {ok, Port};
        none -> caravan_epmd:listen_port_please(Name, Host)
    end.

-spec port_please(atom() | string(), term()) -> {port, inet:port_number(), 6} | noport.
port_please(Name, Ip) -> caravan_epmd:port_please(Name, Ip).

-spec port_please(atom() | string(), term(), timeout()) ->
          {port, inet:port_number(), 6} | noport.
port_please(Name, Ip, Timeout) -> caravan_epmd:port_please(Name, Ip, Timeout).

-spec address_please(string(), term(), inet | inet6) ->
          {ok, inet:ip_address(), inet:port_number(), 6} | {error, term()}.
address_please(Name, Host, Family) -> caravan_epmd:address_please(Name, Host, Family).

-spec names() -> {ok, [{string(), inet:port_number()}]} | {error, address}.
names() -> caravan_epmd:names().

-spec names(term()) -> {ok, [{string(), inet:port_number()}]} | {error, address}.
names(Host) -> caravan_epmd:names(Host).

%% `-erl_epmd_port P' as erl_epmd reads it (the first value, an integer).
erl_epmd_port() ->
    case init:get_argument(erl_epmd_port) of
        {ok, [[Value | _] | _]} ->
            case string:to_integer(Value) of
                {Port, []} when Port >= 0, Port =< 65535 -> {ok, Port};
                _ -> none
            end;
        _ ->
            none
    end.
