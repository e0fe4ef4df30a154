%%% @doc Caravan 1.0.1's epmd module name, kept so its users' flags
%%% (`-epmd_module Elixir.Caravan.Epmd.Client') keep working: every callback
%%% is caravan_epmd's.
-module('Elixir.Caravan.Epmd.Client').

-export([start_link/0]).
-export([register_node/2]).
-export([register_node/3]).
-export([listen_port_please/2]).
-export([port_please/2]).
-export([port_please/3]).
-export([address_please/3]).
-export([names/0]).
-export([names/1]).

-spec start_link() -> {ok, pid()}.
start_link() -> caravan_epmd:start_link().

-spec register_node(string(), inet:port_number()) -> {ok, -1}.
register_node(Name, Port) -> caravan_epmd:register_node(Name, Port).

-spec register_node(string(), inet:port_number(), atom()) -> {ok, -1}.
register_node(Name, Port, Driver) -> caravan_epmd:register_node(Name, Port, Driver).

-spec listen_port_please(atom() | string(), term()) ->
          {ok, inet:port_number()} | {error, term()}.
listen_port_please(Name, Host) -> caravan_epmd:listen_port_please(Name, Host).

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
