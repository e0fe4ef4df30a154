%%% The callbacks of an `-epmd_module', as OTP 25-29's callers use them
%%% (erl_distribution starts it, net_kernel and inet_tcp_dist call the rest):
%%% one list for caravan_epmd and for 'Elixir.Caravan.Epmd.Client', which
%%% must answer every one of them.
-export([start_link/0]).
-export([register_node/2]).
-export([register_node/3]).
-export([listen_port_please/2]).
-export([port_please/2]).
-export([port_please/3]).
-export([address_please/3]).
-export([names/0]).
-export([names/1]).
