-- Event time (epoch seconds) of the newest silver row: how far behind real time the pipeline is.
select max({time}) as newest from {silver}
