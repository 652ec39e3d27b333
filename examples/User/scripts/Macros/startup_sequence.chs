echo starting the day
today
