%%% @doc Caravan 1.0.1's `Caravan.DnsClient' behaviour: a module that turns
%%% a DNS name into `[{Port, Host}]' pairs, one per SRV record. Given as
%%% `dns_client' in the config of Caravan.Cluster.DnsStrategy, it replaces
%%% caravan's own lookup; each pair becomes the node `node_sname-Port@Host'.
%%% 1.0.1 users give a module of their own to test their topologies.
-module('Elixir.Caravan.DnsClient').

-callback get_nodes(Name :: binary()) -> [{integer(), binary()}].
